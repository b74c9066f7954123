// Text kept inside a constant table instead of pointed to from it.
//
// Why: a table of std::string_view or const char* is a table of pointers, and a
// position-independent executable's pointers are rewritten (relocated) by the dynamic loader at
// every start. Each page holding such a table is then a page fault on every run, an idle boot
// included, where a page fault costs near 1% (docs/PERFORMANCE.md "(j)"). A table of
// InlineText is plain read-only data, touched only when it is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bootstate {

template <std::size_t Capacity>
class InlineText {
  static_assert(Capacity < 256, "the size is one byte");

 public:
  // Implicit, so that a table reads as a list of words. A word longer than the capacity does not
  // compile.
  template <std::size_t N>
  constexpr InlineText(const char (&text)[N])  // NOLINT(google-explicit-constructor)
      : size_(static_cast<std::uint8_t>(N - 1)) {
    static_assert(N >= 1 && N - 1 <= Capacity, "longer than the table's capacity");
    for (std::size_t i = 0; i + 1 < N; ++i) text_[i] = text[i];
  }

  constexpr std::string_view view() const { return {text_, size_}; }

 private:
  char text_[Capacity] = {};
  std::uint8_t size_ = 0;
};

}  // namespace bootstate

// A slot handed out in pieces of at most `piece` bytes (SlotStorage::Reader), for tests and fuzz
// targets that cut the reader in pieces everywhere: the header, strings, escapes, numbers and
// the padding.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "core/interfaces.hpp"

namespace bootstate::testing {

class PiecesReader final : public SlotStorage::Reader {
 public:
  PiecesReader(std::string bytes, std::size_t piece) : bytes_(std::move(bytes)), piece_(piece) {}
  Expected<std::size_t> read(std::span<char> into) override {
    const std::size_t count = std::min({into.size(), piece_, bytes_.size() - offset_});
    std::copy_n(bytes_.data() + offset_, count, into.data());
    offset_ += count;
    return count;
  }

 private:
  std::string bytes_;
  std::size_t piece_;
  std::size_t offset_ = 0;
};

}  // namespace bootstate::testing

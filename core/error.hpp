// The one error type of bootstate: every fallible function returns Expected<T>.
//
// Why not std::expected: the project is C++20 and GCC 12 (Debian 12) ships <expected> only for
// C++23. This is the subset of std::expected that bootstate uses, with the same names, so the
// switch is a using-declaration once the toolchain allows it.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bootstate {

// What kind of failure this is; the CLI maps it to an exit status (InvalidInput → 2).
enum class ErrorCode {
  InvalidInput,  // a plan, argument or state the user gave is wrong: nothing was changed
  Io,            // a read/write/fsync failed (errno text in the message)
  Corrupt,       // stored data failed its checksum or could not be decoded
  NotFound,      // a named thing (file, migration id, device) does not exist
  Unsupported,   // valid, but this build or machine cannot do it
  Failed,        // an operation ran and failed (a step, a check, a rename)
  Timeout,       // an operation ran out of its time
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Failed;
  std::string message;

  // "while reading /boot/bootstate/slot-a: ..." — call sites say what they were doing.
  Error with_context(std::string_view what) const {
    return Error{code, fmt::format("{}: {}", what, message)};
  }
};

template <typename... Args>
Error make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{code, fmt::format(format, std::forward<Args>(args)...)};
}

// Carries an Error into an Expected, as std::unexpected does.
class Unexpected {
 public:
  explicit Unexpected(Error error) : error_(std::move(error)) {}
  Error& error() & { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
};

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Expected(Unexpected unexpected)                                            // NOLINT
      : storage_(std::in_place_index<1>, std::move(unexpected).error()) {}
  Expected(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(storage_); }
  const T& value() const& { return std::get<0>(storage_); }
  T&& value() && { return std::get<0>(std::move(storage_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(storage_); }
  Error& error() { return std::get<1>(storage_); }

 private:
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Unexpected unexpected) : error_(std::move(unexpected).error()), ok_(false) {}  // NOLINT
  Expected(Error error) : error_(std::move(error)), ok_(false) {}                         // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Error& error() { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// errno as text, for messages: "open /boot/x: No such file or directory".
std::string errno_text(int error_number);

}  // namespace bootstate

// Propagates the error of an Expected expression out of the current function.
#define BOOTSTATE_TRY(expr)                                                     \
  do {                                                                          \
    if (auto bootstate_try_result_ = (expr); !bootstate_try_result_) {          \
      return ::bootstate::Unexpected(std::move(bootstate_try_result_.error())); \
    }                                                                           \
  } while (0)

#include "core/error.hpp"

#include <cstring>

namespace bootstate {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidInput:
      return "invalid input";
    case ErrorCode::Io:
      return "i/o error";
    case ErrorCode::Corrupt:
      return "corrupt";
    case ErrorCode::NotFound:
      return "not found";
    case ErrorCode::Unsupported:
      return "unsupported";
    case ErrorCode::Failed:
      return "failed";
    case ErrorCode::Timeout:
      return "timeout";
  }
  return "unknown";
}

std::string errno_text(int error_number) {
  char buffer[256];
  // GNU strerror_r returns the message pointer (which may or may not be buffer).
  return ::strerror_r(error_number, buffer, sizeof buffer);
}

}  // namespace bootstate

// UTF-8 checks for text that leaves bootstate as JSON or comes in as a plan. JSON is UTF-8: a
// plan string that is not would be recorded and later printed by `status --json` as a document
// that JSON readers refuse (issue #13).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bootstate {

// Length of the valid UTF-8 prefix of `text` (text.size() when all of it is valid). Valid means
// RFC 3629: shortest form, no UTF-16 surrogates (U+D800-DFFF), nothing above U+10FFFF.
std::size_t valid_utf8_prefix(std::string_view text);

inline bool is_valid_utf8(std::string_view text) {
  return valid_utf8_prefix(text) == text.size();
}

// `text` with each byte that does not start a valid sequence replaced by U+FFFD, for output
// that must be UTF-8 whatever the state holds (step messages are bytes a command printed).
std::string to_valid_utf8(std::string_view text);

}  // namespace bootstate

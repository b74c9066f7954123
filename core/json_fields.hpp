// Strict reading of JSON objects for the plan: every field is read through a FieldReader that
// knows the JSON path it is at, so every error names the offending field
// ("migrations[1].steps[0].phase: expected a string"), and unknown keys are errors.
//
// Why rapidjson directly and not cereal's JSON archive: the plan must be validated completely
// with a JSON path in every message and unknown keys rejected; cereal's archive skips unknown
// members and reports errors without paths. rapidjson is the parser underneath cereal's JSON
// archive (Debian's cereal uses the system rapidjson), so this adds no dependency.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// "migrations" + 2 → "migrations[2]"; "migrations[2]" + "id" → "migrations[2].id".
std::string json_index_path(std::string_view path, std::size_t index);
std::string json_member_path(std::string_view path, std::string_view key);

// How deeply arrays and objects may nest in any JSON bootstate reads (a plan, a state payload).
// rapidjson's parser and every walk of a document (json_to_text, the state reader) recurse once
// per level: 130,000 nested `[` overflowed the stack (issue #13). A plan nests 11 levels deep and
// a state payload 6; the rest is room for fields a newer bootstate adds.
inline constexpr std::size_t kMaxJsonDepth = 128;

// Numbers bootstate reads are small integers; rapidjson 1.1.0 (Debian 12) computes a number's
// decimal exponent in an int that overflows for an exponent near 2^31 after leading zeros
// ("0.000…1e-2147483600") and then indexes its power-of-ten table with it (out of bounds; the
// full-precision parser had a similar fault on long fractions, issue #13). Limits well inside
// what it handles: at most 4 exponent digits and 4,096 characters per number.
inline constexpr std::size_t kMaxJsonExponentDigits = 4;
inline constexpr std::size_t kMaxJsonNumberLength = 4096;

// Whether one number's text (as it stands in JSON) is within the two limits above, and if not,
// which it passes: check_json_limits and the fast state reader (state_fast_decode.cpp) apply the
// same rule.
enum class JsonNumberLimit { Within, TooLong, LongExponent };
JsonNumberLimit json_number_limit(std::string_view number);

// Where the run of spaces from `at` ends, skipped eight bytes at a time: a laid-out state
// payload pads each record with spaces, a fifth of its bytes. Stops before the last incomplete
// word (the caller looks at the bytes one by one from there); never reads at or past `end`.
inline const char* past_spaces(const char* at, const char* end) {
  constexpr std::uint64_t kEightSpaces = 0x2020202020202020ULL;
  std::uint64_t word = 0;
  while (end - at >= static_cast<std::ptrdiff_t>(sizeof word) &&
         (std::memcpy(&word, at, sizeof word), word == kEightSpaces)) {
    at += sizeof word;
  }
  return at;
}

// Fails (InvalidInput) when `text` nests arrays and objects deeper than kMaxJsonDepth, or has a
// number beyond the limits above, naming `source` and the line:column where it does. Only what
// is outside strings counts; the text need not be valid JSON (the parse that follows says what
// else is wrong with it).
Expected<void> check_json_limits(std::string_view text, std::string_view source);

// Line and column (from 1) of byte `offset` of `text`, for messages: "plan.json:3:14".
std::pair<std::size_t, std::size_t> json_line_column(std::string_view text, std::size_t offset);

// Parses `text` into `document`; the error names `source` and the line:column of the fault.
// Text beyond check_json_limits is refused before parsing.
Expected<void> parse_json_document(std::string_view text, std::string_view source,
                                   rapidjson::Document& document);

// The same, parsed in place in `buffer`, which receives a copy of `text` and must outlive
// `document` (its strings point into the buffer): one copy of the text instead of one
// allocation and copy per string (a plan can be a megabyte).
Expected<void> parse_json_document_in_place(std::string_view text, std::string_view source,
                                            rapidjson::Document& document, std::string& buffer);

// Fails (InvalidInput) at the first string, value or key, anywhere in `value` that is not valid
// UTF-8 or holds a NUL byte, naming its JSON path: "migrations[0].steps[1].command[2]: not valid
// UTF-8 (byte 5)". A plan's strings end up in argv, environments, file names and the state, and
// `status --json` prints them: none of them can carry a NUL, and JSON is UTF-8. `value` nests at
// most kMaxJsonDepth deep (it was parsed by parse_json_document*), so the walk may recurse.
Expected<void> check_json_strings(const rapidjson::Value& value, const std::string& path);

// Writes `value` back as compact JSON (member order kept): the canonical text of a definition.
std::string json_to_text(const rapidjson::Value& value);
// The same into `buffer` (cleared first), so that one buffer serves many values.
std::string json_to_text(const rapidjson::Value& value, rapidjson::StringBuffer& buffer);

class FieldReader {
 public:
  // `value` must outlive the reader. Fails if it is not an object, or has a duplicate key.
  static Expected<FieldReader> open(const rapidjson::Value& value, std::string path);

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return json_member_path(path_, key); }
  Error error_at(std::string_view key, std::string_view message) const;

  bool has(std::string_view key) const;
  const rapidjson::Value* get(std::string_view key) const;

  // Fails when a key outside `allowed` is present, naming it and the object.
  Expected<void> reject_unknown(std::initializer_list<std::string_view> allowed) const;
  Expected<void> reject_unknown(const std::vector<std::string_view>& allowed) const;

  Expected<std::string> required_string(std::string_view key) const;
  Expected<std::string> optional_string(std::string_view key, std::string fallback = {}) const;
  Expected<bool> optional_bool(std::string_view key, bool fallback) const;
  Expected<std::int64_t> required_integer(std::string_view key) const;
  Expected<std::optional<std::int64_t>> optional_integer(std::string_view key) const;
  // An array of strings; absent → empty.
  Expected<std::vector<std::string>> string_array(std::string_view key) const;
  // An object of string values; absent → empty.
  Expected<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view key) const;
  // An array of objects/values for the caller to walk; absent → nullptr.
  Expected<const rapidjson::Value*> optional_array(std::string_view key) const;

 private:
  Expected<void> reject_unknown(const std::string_view* allowed, std::size_t count) const;
  FieldReader(const rapidjson::Value& value, std::string path)
      : value_(&value), path_(std::move(path)) {}
  const rapidjson::Value* value_;
  std::string path_;
};

// "expected a string" style names of JSON types, for messages.
std::string_view json_type_name(const rapidjson::Value& value);

}  // namespace bootstate

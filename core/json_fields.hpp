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

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// "migrations" + 2 → "migrations[2]"; "migrations[2]" + "id" → "migrations[2].id".
std::string json_index_path(std::string_view path, std::size_t index);
std::string json_member_path(std::string_view path, std::string_view key);

// Parses `text` into `document`; the error names `source` and the line:column of the fault.
Expected<void> parse_json_document(std::string_view text, std::string_view source,
                                   rapidjson::Document& document);

// The same, parsed in place in `buffer`, which receives a copy of `text` and must outlive
// `document` (its strings point into the buffer): one copy of the text instead of one
// allocation and copy per string (a plan can be a megabyte).
Expected<void> parse_json_document_in_place(std::string_view text, std::string_view source,
                                            rapidjson::Document& document, std::string& buffer);

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

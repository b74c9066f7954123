// Pretty JSON output for --json: the keys documented in docs/DESIGN.md are stable.
#pragma once

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.hpp"

namespace bootstate::cli {

class JsonWriter {
 public:
  JsonWriter() : writer_(buffer_) { writer_.SetIndent(' ', 2); }
  // Streams to `sink` in pieces of about kSpillBytes instead of keeping the whole document: the
  // status of 1,000 migrations is 1.3 MB, whose buffer alone cost ~300 new pages, each a page
  // fault (docs/PERFORMANCE.md "Session 10"). finish() writes the rest.
  explicit JsonWriter(std::FILE* sink) : JsonWriter() { sink_ = sink; }

  void begin_object() { writer_.StartObject(); }
  void end_object() {
    writer_.EndObject();
    spill(kSpillBytes);
  }
  void begin_array() { writer_.StartArray(); }
  void end_array() {
    writer_.EndArray();
    spill(kSpillBytes);
  }
  // Text that is not UTF-8 (a step's message holds what a command printed) is written with
  // U+FFFD for each bad byte: JSON is UTF-8, and rapidjson would copy the bytes as they are.
  void key(std::string_view name) {
    if (!plain_ascii(name) && !is_valid_utf8(name)) return key(to_valid_utf8(name));
    writer_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  }
  void string(std::string_view value) {
    if (!plain_ascii(value) && !is_valid_utf8(value)) return string(to_valid_utf8(value));
    writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  void null() { writer_.Null(); }
  // A JSON value produced elsewhere (an executor's detail), inserted as data, not as a string.
  void raw(std::string_view json, rapidjson::Type type) {
    writer_.RawValue(json.data(), json.size(), type);
  }
  void boolean(bool value) { writer_.Bool(value); }
  void number(std::int64_t value) { writer_.Int64(value); }

  // key: value shorthands; an empty optional string is written as null.
  void field(std::string_view name, std::string_view value) {
    key(name);
    string(value);
  }
  void field(std::string_view name, const char* value) { field(name, std::string_view(value)); }
  void field(std::string_view name, const std::string& value) {
    field(name, std::string_view(value));
  }
  void field_or_null(std::string_view name, std::string_view value) {
    key(name);
    if (value.empty()) {
      null();
    } else {
      string(value);
    }
  }
  void field(std::string_view name, bool value) {
    key(name);
    boolean(value);
  }
  void field(std::string_view name, std::int64_t value) {
    key(name);
    number(value);
  }
  void field(std::string_view name, const std::vector<std::string>& values) {
    key(name);
    begin_array();
    for (const std::string& value : values) string(value);
    end_array();
  }

  // The end of a streamed document and its final newline (the sink's errors are the caller's
  // to check).
  void finish() {
    buffer_.Put('\n');
    spill(0);
  }

  // The document and a final newline (one copy of a text that can be megabytes).
  std::string text() const {
    std::string out;
    out.reserve(buffer_.GetSize() + 1);
    out.append(buffer_.GetString(), buffer_.GetSize());
    out += '\n';
    return out;
  }

 private:
  // Nearly every key and value: checked inline, without the call into the UTF-8 decoder (a
  // status of 10,000 migrations writes a million of them, docs/PERFORMANCE.md "Session 8").
  static bool plain_ascii(std::string_view text) {
    bool plain = true;
    for (const char c : text) plain &= static_cast<unsigned char>(c) < 0x80;
    return plain;
  }

  // The writer only appends: what it wrote so far can go out between values.
  void spill(std::size_t above) {
    if (sink_ == nullptr || buffer_.GetSize() < above) return;
    std::fwrite(buffer_.GetString(), 1, buffer_.GetSize(), sink_);
    buffer_.Clear();
  }

  static constexpr std::size_t kSpillBytes = 64 * 1024;
  rapidjson::StringBuffer buffer_;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer_;
  std::FILE* sink_ = nullptr;
};

}  // namespace bootstate::cli

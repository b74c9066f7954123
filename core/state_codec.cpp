// The state payload (JSON read and written with rapidjson directly) and the slot framing
// around it. Why not cereal's JSON archive: see state_codec.hpp.
//
// Each record's fields are listed once, in a visit_*() function that both the Writer and the
// Reader walk, so the saved and the loaded fields cannot drift apart. The Reader gives a missing
// field its default, keeps the JSON path for messages and refuses an unknown enum word.
#include "core/state_codec.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <array>
#include <charconv>
#include <concepts>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/crc32c.hpp"
#include "core/json_fields.hpp"
#include "core/state_fast_decode.hpp"
#include "core/state_fields.hpp"

namespace bootstate {
namespace {

using state_fields::Conversion;
using state_fields::DecodeError;
using state_fields::NewerWordError;
using state_fields::visit;

// What payload version 1 has always looked like: cereal's JSON archive with NoIndent() is
// rapidjson's PrettyWriter indenting by 0, i.e. `"key": value` and one value per line. The
// same writer gives the same bytes, so a payload written here is byte for byte what the
// cereal-based bootstate wrote (tests/core/test_state_codec.cpp holds one as a fixture).
using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

rapidjson::SizeType json_size(std::size_t size) {
  // A State field of 4 GiB is not a state; refuse rather than write a truncated string.
  if (size > std::numeric_limits<rapidjson::SizeType>::max()) {
    throw std::length_error("state payload: a string field exceeds 4 GiB");
  }
  return static_cast<rapidjson::SizeType>(size);
}

class Writer {
 public:
  // `omit`: a list left out (the store lays the migrations out itself, state_layout.hpp).
  explicit Writer(JsonWriter& out, const char* omit = nullptr) : out_(out), omit_(omit) {}

  template <typename T>
  void field(const char* name, const T& value) {
    key(name);
    put(value);
  }
  template <typename T>
  void required(const char* name, const T& value) {
    field(name, value);
  }
  // A field added later that is written only when it is set: payloads that do not use it stay
  // byte for byte what older writers wrote.
  template <typename T>
  void unless_default(const char* name, const T& value) {
    if (value != T{}) field(name, value);
  }

  void list(const char* name, const std::vector<std::string>& values) {
    key(name);
    out_.StartArray();
    for (const std::string& value : values) put(value);
    out_.EndArray();
  }
  // A list added later, written only when it has elements (see unless_default).
  template <typename R>
  void list_unless_empty(const char* name, const std::vector<R>& records) {
    if (!records.empty()) list(name, records);
  }
  template <typename R>
  void list(const char* name, const std::vector<R>& records) {
    if (omit_ != nullptr && std::strcmp(name, omit_) == 0) return;
    key(name);
    out_.StartArray();
    for (const R& record : records) {
      out_.StartObject();
      visit(*this, record);
      out_.EndObject();
    }
    out_.EndArray();
  }

  // An absent optional record is left out; readers take absence as nullopt.
  template <typename R>
  void object(const char* name, const std::optional<R>& record) {
    if (!record) return;
    key(name);
    out_.StartObject();
    visit(*this, *record);
    out_.EndObject();
  }

 private:
  void key(const char* name) { out_.Key(name, json_size(std::strlen(name))); }

  // Each C++ type keeps the JSON number kind cereal gave it, which is what readers check.
  template <typename T>
  void put(const T& value) {
    if constexpr (std::is_enum_v<T>) {
      const std::string_view word = to_string(value);
      out_.String(word.data(), json_size(word.size()));
    } else if constexpr (std::is_same_v<T, std::string>) {
      out_.String(value.data(), json_size(value.size()));
    } else if constexpr (std::is_same_v<T, bool>) {
      out_.Bool(value);
    } else if constexpr (std::is_same_v<T, int>) {
      out_.Int(value);
    } else if constexpr (std::is_same_v<T, std::uint32_t>) {
      out_.Uint(value);
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      out_.Int64(value);
    } else {
      static_assert(std::is_same_v<T, std::uint64_t>, "a State field of a type with no JSON form");
      out_.Uint64(value);
    }
  }

  JsonWriter& out_;
  const char* omit_;
};

// Walks a parsed document. A field is looked up by name, first where the previous one ended
// (the order this writer uses), then from the start of the object, so any order and any
// unknown member reads the same. Paths for messages are kept in one string that grows and
// shrinks as records are entered and left.
class Reader {
 public:
  explicit Reader(const rapidjson::Value& object) : object_(&object) {}

  // A missing field keeps the default it already has: the payload came from an older writer.
  template <typename T>
  void field(const char* name, T& value) {
    if (const rapidjson::Value* node = member(name)) read(name, *node, value);
  }

  template <typename T>
  void unless_default(const char* name, T& value) {
    field(name, value);
  }

  // Fields every payload version has had; without them the record means nothing.
  template <typename T>
  void required(const char* name, T& value) {
    const rapidjson::Value* node = member(name);
    if (node == nullptr) fail(name, "missing");
    read(name, *node, value);
  }

  void list(const char* name, std::vector<std::string>& values) {
    values.clear();
    const rapidjson::Value* node = array(name);
    if (node == nullptr) return;
    values.reserve(node->Size());
    for (rapidjson::SizeType index = 0; index < node->Size(); ++index) {
      const rapidjson::Value& element = (*node)[index];
      if (!element.IsString()) fail(name, index, "expected a string");
      values.emplace_back(element.GetString(), element.GetStringLength());
    }
  }

  template <typename R>
  void list_unless_empty(const char* name, std::vector<R>& records) {
    list(name, records);
  }
  template <typename R>
  void list(const char* name, std::vector<R>& records) {
    records.clear();
    const rapidjson::Value* node = array(name);
    if (node == nullptr) return;
    records.resize(node->Size());
    for (rapidjson::SizeType index = 0; index < node->Size(); ++index) {
      Nested nested(*this, name, index, (*node)[index]);
      visit(*this, records[index]);
    }
  }

  // Only absence means "none": `null` or any other non-object is Corrupt.
  template <typename R>
  void object(const char* name, std::optional<R>& record) {
    record.reset();
    const rapidjson::Value* node = member(name);
    if (node == nullptr) return;
    Nested nested(*this, name, kNoIndex, *node);
    visit(*this, record.emplace());
  }

 private:
  static constexpr rapidjson::SizeType kNoIndex = static_cast<rapidjson::SizeType>(-1);

  // Enters a record (`name` of the current one, or its element `index`): checks that it is an
  // object and makes it current, with its path; the destructor goes back to the outer record.
  class Nested {
   public:
    Nested(Reader& reader, const char* name, rapidjson::SizeType index,
           const rapidjson::Value& node)
        : reader_(reader),
          object_(std::exchange(reader.object_, &node)),
          cursor_(std::exchange(reader.cursor_, 0)),
          path_size_(reader.path_.size()) {
      reader.append_path(name);
      if (index != kNoIndex) reader.append_index(index);
      if (node.IsArray()) reader.fail_here("expected an object, found an array");
      if (!node.IsObject()) reader.fail_here("expected an object");
    }
    ~Nested() {
      reader_.object_ = object_;
      reader_.cursor_ = cursor_;
      reader_.path_.resize(path_size_);
    }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;

   private:
    Reader& reader_;
    const rapidjson::Value* object_;
    rapidjson::SizeType cursor_;
    std::size_t path_size_;
  };

  void append_path(const char* name) {
    if (!path_.empty()) path_ += '.';
    path_ += name;
  }
  void append_index(rapidjson::SizeType index) {
    std::array<char, 16> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), index).ptr;
    path_ += '[';
    path_.append(digits.data(), end);
    path_ += ']';
  }

  [[noreturn]] void fail_here(std::string_view what) const {
    throw DecodeError(fmt::format("{}: {}", path_, what));
  }
  std::string where(const char* name) const {
    return path_.empty() ? std::string(name) : fmt::format("{}.{}", path_, name);
  }
  [[noreturn]] void fail(const char* name, std::string_view what) const {
    throw DecodeError(fmt::format("{}: {}", where(name), what));
  }
  [[noreturn]] void fail(const char* name, rapidjson::SizeType index, std::string_view what) const {
    throw DecodeError(fmt::format("{}[{}]: {}", where(name), index, what));
  }

  const rapidjson::Value* member(const char* name) {
    const rapidjson::SizeType length = json_size(std::strlen(name));
    const auto begin = object_->MemberBegin();
    const auto count = static_cast<rapidjson::SizeType>(object_->MemberCount());
    auto matches = [&](rapidjson::SizeType index) {
      const rapidjson::Value& key = begin[index].name;
      return key.GetStringLength() == length && std::memcmp(key.GetString(), name, length) == 0;
    };
    if (cursor_ < count && matches(cursor_)) return &begin[cursor_++].value;
    for (rapidjson::SizeType index = 0; index < count; ++index) {
      if (matches(index)) {
        cursor_ = index + 1;
        return &begin[index].value;
      }
    }
    return nullptr;
  }

  const rapidjson::Value* array(const char* name) {
    const rapidjson::Value* node = member(name);
    if (node != nullptr && !node->IsArray()) fail(name, "expected an array");
    return node;
  }

  template <typename T>
  void read(const char* name, const rapidjson::Value& node, T& value) {
    switch (state_fields::convert(node, value)) {
      case Conversion::Done:
        return;
      case Conversion::WrongType:
        fail(name, "value of the wrong type");
      case Conversion::UnknownWord:
        if constexpr (std::is_enum_v<T>) {
          throw NewerWordError(
              fmt::format("{}: unknown {} \"{}\"", where(name),
                          state_fields::kind_of_word(static_cast<T*>(nullptr)),
                          std::string_view(node.GetString(), node.GetStringLength())));
        }
    }
  }

  const rapidjson::Value* object_;
  rapidjson::SizeType cursor_ = 0;  // index of the member after the last one read
  std::string path_;                // of the current record, "" at the top
};

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
void put_u64(std::string& out, std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
template <typename T>
T get_le(std::string_view bytes, std::size_t offset) {
  T value = 0;
  for (std::size_t index = 0; index < sizeof(T); ++index) {
    value |= static_cast<T>(static_cast<unsigned char>(bytes[offset + index])) << (8 * index);
  }
  return value;
}

constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kSequenceOffset = 12;
constexpr std::size_t kLengthOffset = 20;
constexpr std::size_t kCrcOffset = kSlotChecksumOffset;

// One JSON object in the payload's form; `fill` writes its members.
template <typename Fill>
std::string json_object(Fill fill) {
  rapidjson::StringBuffer buffer;
  JsonWriter out(buffer);
  out.SetIndent(' ', 0);
  out.StartObject();
  fill(out);
  out.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace

std::string encode_state(const State& state) {
  return json_object([&](JsonWriter& out) {
    out.Key("payload_version");
    out.Uint(kPayloadVersion);
    Writer writer(out);
    visit(writer, state);
  });
}

std::string encode_migration(const MigrationRecord& migration) {
  return json_object([&](JsonWriter& out) {
    Writer writer(out);
    visit(writer, migration);
  });
}

std::string encode_state_except_migrations(const State& state) {
  return json_object([&](JsonWriter& out) {
    Writer writer(out, "migrations");
    visit(writer, state);
  });
}

Expected<State> decode_state(std::string_view payload) {
  std::string text(payload);
  return decode_state_in_place(text);
}

namespace {

Expected<State> decode_in_place(std::string& text, bool fast_first);

}  // namespace

Expected<State> decode_state_in_place(std::string& text) {
  return decode_in_place(text, true);
}

Expected<State> decode_state_by_document(std::string_view payload) {
  std::string text(payload);
  return decode_in_place(text, false);
}

namespace {

Expected<State> decode_in_place(std::string& text, bool fast_first) {
  // No JSON text holds a NUL byte (a string's NUL is written \u0000), and both readers below
  // would read the text only up to its first NUL, while the limits scan read past it: the fuzzer
  // found a payload the two readers disagreed on so. What follows a NUL is refused, as any
  // other bytes after the JSON text are, not left unread.
  if (const std::size_t nul = text.find('\0'); nul != std::string::npos) {
    const auto [line, column] = json_line_column(text, nul);
    return make_error(ErrorCode::Corrupt, "state payload:{}:{}: a NUL byte", line, column);
  }
  // A laid-out payload ends in its slot's padding (state_layout.hpp, SlotFiles' headroom): a
  // fifth of a slot at 1,000 migrations. Whitespace after the object means nothing to JSON; cut
  // here, the checks and the parser below do not read it byte by byte.
  std::size_t end = text.size();
  while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\t' ||
                     text[end - 1] == '\r')) {
    --end;
  }
  text.resize(end);
  try {
    // Nearly always the payload is read straight into the State (state_fast_decode.hpp); what
    // that reader does not take, the document reader below reads, naming the fault.
    if (fast_first) {
      if (auto state = decode_state_fast(text.c_str())) return std::move(*state);
    }
  } catch (const std::exception& error) {  // no memory for a huge payload
    return make_error(ErrorCode::Corrupt, "state payload: {}", error.what());
  }
  // Bounded before parsing: rapidjson's parser recurses once per level, and a checksum-valid
  // slot with a field nested 300,000 deep overflowed the stack (issue #13); and numbers whose
  // exponent rapidjson would overflow (json_fields.hpp).
  if (auto limits = check_json_limits(text, "state payload"); !limits) {
    return make_error(ErrorCode::Corrupt, "{}", limits.error().message);
  }
  try {
    // In situ: strings are unescaped in place instead of being copied into the document one by
    // one; for the 1,000-migration state the parse alone measured 2-3 ms in situ against 9-10
    // ms copying. kParseNanAndInfFlag as cereal's reader parsed: a newer writer's NaN in a field
    // this build does not know must not make the whole payload unreadable. Not
    // kParseFullPrecisionFlag (which cereal's reader also used): its decimal-to-double
    // conversion (rapidjson 1.1.0 StrtodBigInteger) read out of bounds on a fraction of fifty
    // digits and an exponent of -400 (issue #13), and no State field is a floating-point number:
    // integers are parsed exactly either way.
    rapidjson::Document document;
    document.ParseInsitu<rapidjson::kParseNanAndInfFlag>(text.data());
    if (document.HasParseError() || !(document.IsObject() || document.IsArray())) {
      throw DecodeError("not a JSON object");
    }
    if (document.IsArray()) throw DecodeError("the payload is a JSON array, not an object");
    Reader reader(document);
    // Any version is read: a newer writer only adds fields, which the visit ignores.
    std::uint32_t payload_version = 0;
    reader.required("payload_version", payload_version);
    if (payload_version == 0) throw DecodeError("payload_version: 0 was never written");
    State state;
    visit(reader, state);
    return state;
  } catch (const NewerWordError& error) {
    return make_error(ErrorCode::Unsupported, "state payload: {} (written by a newer bootstate)",
                      error.what());
  } catch (const std::exception& error) {  // DecodeError, or no memory for a huge payload
    return make_error(ErrorCode::Corrupt, "state payload: {}", error.what());
  }
}

}  // namespace

std::string encode_slot(std::uint64_t sequence, std::string_view payload) {
  std::string bytes;
  bytes.reserve(kSlotHeaderSize + payload.size());
  bytes.append(kSlotHeaderSize, '\0');
  bytes.append(payload);
  seal_slot(bytes, sequence);
  return bytes;
}

std::string slot_header_fields(std::uint64_t sequence, std::uint64_t payload_size) {
  std::string fields;
  fields.reserve(kSlotHeaderSize);
  fields.append(kSlotMagic);
  put_u32(fields, kSlotFormatVersion);
  put_u64(fields, sequence);
  put_u64(fields, payload_size);
  return fields;
}

void append_slot_checksum(std::string& fields, std::uint32_t checksum) {
  put_u32(fields, checksum);
}

void seal_slot(std::string& frame, std::uint64_t sequence) {
  const std::string_view payload = std::string_view(frame).substr(kSlotHeaderSize);
  std::string header = slot_header_fields(sequence, payload.size());
  append_slot_checksum(header, crc32c(payload, crc32c(header)));
  frame.replace(0, kSlotHeaderSize, header);
}

Expected<SlotContents> check_slot_frame_parts(std::string_view head, std::uint64_t size,
                                              std::function<std::uint32_t()> checksum) {
  if (size < kSlotHeaderSize) {
    return make_error(ErrorCode::Corrupt, "truncated: {} bytes, the header alone is {}", size,
                      kSlotHeaderSize);
  }
  if (head.substr(0, kSlotMagic.size()) != kSlotMagic) {
    return make_error(ErrorCode::Corrupt, "bad magic: not a bootstate state slot");
  }
  const auto length = get_le<std::uint64_t>(head, kLengthOffset);
  const std::uint64_t available = size - kSlotHeaderSize;
  if (length != available) {
    return make_error(ErrorCode::Corrupt,
                      "length mismatch: the header says {} payload bytes, the slot holds {}",
                      length, available);
  }
  const auto stored = get_le<std::uint32_t>(head, kCrcOffset);
  const std::uint32_t computed = checksum();
  if (stored != computed) {
    return make_error(ErrorCode::Corrupt, "checksum mismatch: stored {:#010x}, computed {:#010x}",
                      stored, computed);
  }
  SlotContents contents;
  contents.format_version = get_le<std::uint32_t>(head, kVersionOffset);
  contents.sequence = get_le<std::uint64_t>(head, kSequenceOffset);
  return contents;
}

namespace {

// Verifies magic, length and checksum; the payload (bytes after the header) is left to the caller.
Expected<SlotContents> check_slot_frame(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, kSlotHeaderSize);
  return check_slot_frame_parts(head, bytes.size(), [&] {
    return crc32c(bytes.substr(kSlotHeaderSize), crc32c(head.substr(0, kCrcOffset)));
  });
}

}  // namespace

std::optional<std::uint64_t> slot_head_sequence(std::string_view head) {
  if (head.size() < kSlotHeaderSize || head.substr(0, kSlotMagic.size()) != kSlotMagic) {
    return std::nullopt;
  }
  return get_le<std::uint64_t>(head, kSequenceOffset);
}

Expected<void> verify_slot_frame(std::string_view bytes) {
  BOOTSTATE_TRY(check_slot_frame(bytes));
  return {};
}

Expected<SlotContents> decode_slot_frame(std::string_view bytes) {
  auto contents = check_slot_frame(bytes);
  if (contents) contents->payload = std::string(bytes.substr(kSlotHeaderSize));
  return contents;
}

Expected<SlotContents> decode_owned_slot_frame(std::string&& bytes) {
  auto contents = check_slot_frame(bytes);
  if (!contents) return contents;
  bytes.erase(0, kSlotHeaderSize);  // moved down in its own buffer: no second megabyte
  contents->payload = std::move(bytes);
  return contents;
}

Expected<void> check_slot_format(const SlotContents& contents) {
  if (contents.format_version == 0) {
    return make_error(ErrorCode::Corrupt, "state format 0 was never written");
  }
  if (contents.format_version > kSlotFormatVersion) {
    return make_error(ErrorCode::Unsupported,
                      "state format {} is newer than this bootstate supports ({})",
                      contents.format_version, kSlotFormatVersion);
  }
  return {};
}

Expected<SlotContents> decode_slot(std::string_view bytes) {
  auto contents = decode_slot_frame(bytes);
  if (!contents) return contents;
  BOOTSTATE_TRY(check_slot_format(*contents));
  return contents;
}

}  // namespace bootstate

// rapidjson's reader calls the handler below for each event of the payload (SAX); the handler
// keeps a stack of frames, one per record, list or skipped value being read. A record's frame
// holds its fields as the visit() of state_fields.hpp lists them, bound to that record's members:
// a key selects one, the value that follows is converted by the same state_fields::convert the
// document reader uses. Anything unusual ends the parse (a handler returning false), and the
// caller falls back to the document reader.
#include "core/state_fast_decode.hpp"

#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/json_fields.hpp"
#include "core/slot_stream.hpp"
#include "core/state_fields.hpp"

namespace bootstate {
namespace {

class Decoder;

enum class FieldKind : std::uint8_t { Scalar, StringList, RecordList, Record };

struct Field {
  std::string_view name;
  FieldKind kind;
  bool required;
  void* target;
  // Scalar: converts one JSON value into the member; false when it does not fit.
  bool (*assign)(void* target, const rapidjson::Value& value);
  // RecordList: appends an element and opens it; Record: emplaces the optional and opens it.
  void (*open)(Decoder& decoder, void* target);
  // RecordList: done with the list.
  void (*close)(void* target);
};

// The most fields any record has (MigrationRecord: 12; the top: State's 9 and payload_version).
constexpr std::size_t kMaxFields = 16;

enum class FrameKind : std::uint8_t { Record, RecordList, StringList, Skip };

struct Frame {
  FrameKind kind = FrameKind::Record;
  std::uint8_t count = 0;    // Record: fields bound
  std::uint8_t cursor = 0;   // Record: the field after the last one read (the writer's order)
  std::uint8_t pending = 0;  // Record: the field whose value comes next, valid after a key
  std::uint32_t seen = 0;    // Record: one bit per field read
  int depth = 0;             // Skip: arrays and objects open inside the skipped value
  void* target = nullptr;    // the lists: their vector
  void (*open)(Decoder& decoder, void* target) = nullptr;  // RecordList: opens an element
  void (*close)(void* target) = nullptr;                   // RecordList: ends it
  bool overflow = false;  // Record: more fields than kMaxFields (this reader then gives up)
  std::array<Field, kMaxFields> fields;
};

template <typename T>
bool assign(void* target, const rapidjson::Value& value) {
  return state_fields::convert(value, *static_cast<T*>(target)) == state_fields::Conversion::Done;
}

// The Io that visit() walks: binds each field it names to the frame.
class Binder {
 public:
  explicit Binder(Frame& frame) : frame_(frame) {}

  template <typename T>
  void field(const char* name, T& value) {
    add(name, FieldKind::Scalar, &value).assign = &assign<T>;
  }
  template <typename T>
  void required(const char* name, T& value) {
    Field& bound = add(name, FieldKind::Scalar, &value);
    bound.assign = &assign<T>;
    bound.required = true;
  }
  template <typename T>
  void unless_default(const char* name, T& value) {
    field(name, value);
  }
  void list(const char* name, std::vector<std::string>& values) {
    add(name, FieldKind::StringList, &values);
  }
  template <typename R>
  void list(const char* name, std::vector<R>& records);
  template <typename R>
  void list_unless_empty(const char* name, std::vector<R>& records) {
    list(name, records);
  }
  template <typename R>
  void object(const char* name, std::optional<R>& record);

 private:
  // A record with more fields than kMaxFields (one added without raising it) is left to the
  // document reader, never misread: slower, and bench/ would show it.
  Field& add(const char* name, FieldKind kind, void* target) {
    if (frame_.count == kMaxFields) {
      frame_.overflow = true;
      return frame_.fields[kMaxFields - 1];
    }
    Field& bound = frame_.fields[frame_.count++];
    bound = Field{name, kind, false, target, nullptr, nullptr, nullptr};
    return bound;
  }

  Frame& frame_;
};

class Decoder {
 public:
  explicit Decoder(State& state) : state_(state) {}

  // Opens `record`'s frame with its fields bound (a record list's element, an optional record).
  template <typename R>
  void open_record(R& record) {
    Frame& frame = push(FrameKind::Record);
    Binder binder(frame);
    state_fields::visit(binder, record);
    gave_up_ = gave_up_ || frame.overflow;
  }

  bool complete() const { return done_ && payload_version_ != 0; }

  // rapidjson's handler concept.
  bool Null() { return scalar(rapidjson::Value()); }
  bool Bool(bool value) { return scalar(rapidjson::Value(value)); }
  bool Int(int value) { return scalar(rapidjson::Value(value)); }
  bool Uint(unsigned value) { return scalar(rapidjson::Value(value)); }
  bool Int64(std::int64_t value) { return scalar(rapidjson::Value(value)); }
  bool Uint64(std::uint64_t value) { return scalar(rapidjson::Value(value)); }
  bool Double(double value) { return scalar(rapidjson::Value(value)); }
  // Numbers come as their text (kParseNumbersAsStringsFlag): rapidjson 1.1.0 converts a number
  // with a long exponent out of bounds (json_fields.hpp), so it is converted only within the
  // limits that check_json_limits enforces before the document reader parses.
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    const std::string_view number(text, length);
    if (json_number_limit(number) != JsonNumberLimit::Within) return false;
    // Nearly every number is a small integer: what rapidjson makes of up to 9 digits.
    const bool minus = !number.empty() && number[0] == '-';
    const std::string_view digits = number.substr(minus ? 1 : 0);
    if (!digits.empty() && digits.size() <= 9 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      unsigned magnitude = 0;
      for (const char digit : digits)
        magnitude = magnitude * 10 + static_cast<unsigned>(digit - '0');
      return minus ? scalar(rapidjson::Value(-static_cast<int>(magnitude)))
                   : scalar(rapidjson::Value(magnitude));
    }
    // Else the text (rapidjson ends it with a NUL on its stack) parsed alone: the value the
    // document reader makes of it.
    NumberValue value;
    rapidjson::Reader reader;
    rapidjson::StringStream stream(text);
    reader.Parse<rapidjson::kParseNanAndInfFlag>(stream, value);
    return !reader.HasParseError() && value.set && scalar(value.value);
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    if (top_ > 0 && top().kind == FrameKind::StringList) {
      static_cast<std::vector<std::string>*>(top().target)->emplace_back(text, length);
      return true;
    }
    return scalar(rapidjson::Value(rapidjson::StringRef(text, length)));
  }

  bool StartObject() {
    if (++depth_ > kMaxJsonDepth) return false;  // rapidjson recurses once per level
    if (top_ == 0) {
      if (done_) return false;
      Frame& frame = push(FrameKind::Record);
      Binder binder(frame);
      binder.required("payload_version", payload_version_);
      state_fields::visit(binder, state_);
      return !frame.overflow;
    }
    Frame& frame = top();
    switch (frame.kind) {
      case FrameKind::Skip:
        ++frame.depth;
        return true;
      case FrameKind::RecordList:
        frame.open(*this, frame.target);
        return !gave_up_;
      case FrameKind::StringList:
        return false;
      case FrameKind::Record: {
        const Field& field = frame.fields[frame.pending];
        if (field.kind != FieldKind::Record) return false;
        field.open(*this, field.target);
        return !gave_up_;
      }
    }
    return false;
  }

  bool StartArray() {
    if (++depth_ > kMaxJsonDepth) return false;
    if (top_ == 0) return false;
    Frame& frame = top();
    if (frame.kind == FrameKind::Skip) {
      ++frame.depth;
      return true;
    }
    if (frame.kind != FrameKind::Record) return false;
    const Field& field = frame.fields[frame.pending];
    if (field.kind == FieldKind::StringList) {
      push(FrameKind::StringList).target = field.target;
      return true;
    }
    if (field.kind == FieldKind::RecordList) {
      const Field bound = field;  // push() may move the frames
      Frame& list = push(FrameKind::RecordList);
      list.target = bound.target;
      list.open = bound.open;
      list.close = bound.close;
      return true;
    }
    return false;
  }

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    Frame& frame = top();
    if (frame.kind == FrameKind::Skip) return true;
    const std::string_view name(text, length);
    std::size_t index = frame.cursor;
    if (index >= frame.count || frame.fields[index].name != name) {
      for (index = 0; index < frame.count && frame.fields[index].name != name; ++index) {
      }
    }
    if (index == frame.count) {  // unknown: a newer writer's field, ignored as documents do
      push(FrameKind::Skip);
      return true;
    }
    const std::uint32_t bit = std::uint32_t{1} << index;
    if ((frame.seen & bit) != 0) return false;  // twice: the document reader decides which
    frame.seen |= bit;
    frame.pending = static_cast<std::uint8_t>(index);
    frame.cursor = static_cast<std::uint8_t>(index + 1);
    return true;
  }

  bool EndObject(rapidjson::SizeType) {
    --depth_;
    Frame& frame = top();
    if (frame.kind == FrameKind::Skip) return close_skipped(frame);
    for (std::size_t index = 0; index < frame.count; ++index) {
      if (frame.fields[index].required && (frame.seen & (std::uint32_t{1} << index)) == 0) {
        return false;
      }
    }
    --top_;
    if (top_ == 0) done_ = true;
    return true;
  }

  bool EndArray(rapidjson::SizeType) {
    --depth_;
    Frame& frame = top();
    if (frame.kind == FrameKind::Skip) return close_skipped(frame);
    if (frame.kind == FrameKind::RecordList) frame.close(frame.target);
    --top_;
    return true;
  }

 private:
  Frame& top() { return frames_[top_ - 1]; }
  // Frames are kept for reuse when closed: each holds room for kMaxFields fields, and a state
  // of 1,000 migrations opens over 4,000 records.
  Frame& push(FrameKind kind) {
    if (top_ == frames_.size()) frames_.emplace_back();
    Frame& frame = frames_[top_++];
    frame.kind = kind;
    frame.count = frame.cursor = frame.pending = 0;
    frame.overflow = false;
    frame.seen = 0;
    frame.depth = 0;
    return frame;
  }

  bool scalar(const rapidjson::Value& value) {
    if (top_ == 0) return false;  // the payload is not an object
    Frame& frame = top();
    switch (frame.kind) {
      case FrameKind::Skip:
        if (frame.depth == 0) --top_;
        return true;
      case FrameKind::Record: {
        const Field& field = frame.fields[frame.pending];
        return field.kind == FieldKind::Scalar && field.assign(field.target, value);
      }
      case FrameKind::RecordList:
      case FrameKind::StringList:
        return false;
    }
    return false;
  }

  bool close_skipped(Frame& frame) {
    if (--frame.depth == 0) --top_;
    return true;
  }

  // One number parsed alone, as the document reader would hold it.
  struct NumberValue : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NumberValue> {
    bool Default() { return false; }
    bool Int(int number) { return take(rapidjson::Value(number)); }
    bool Uint(unsigned number) { return take(rapidjson::Value(number)); }
    bool Int64(std::int64_t number) { return take(rapidjson::Value(number)); }
    bool Uint64(std::uint64_t number) { return take(rapidjson::Value(number)); }
    bool Double(double number) { return take(rapidjson::Value(number)); }
    bool take(rapidjson::Value number) {
      value = number;
      set = true;
      return true;
    }
    rapidjson::Value value;
    bool set = false;
  };

  State& state_;
  std::size_t depth_ = 0;
  bool gave_up_ = false;  // a record this reader cannot bind (Binder::add)
  std::uint32_t payload_version_ = 0;
  bool done_ = false;
  std::vector<Frame> frames_;  // frames_[0, top_) are open
  std::size_t top_ = 0;
};

template <typename R>
void open_element(Decoder& decoder, void* target) {
  decoder.open_record(static_cast<std::vector<R>*>(target)->emplace_back());
}

// A list grows as its elements come (the count is not known before its end); it is left with
// no more room than it holds, as the document reader leaves it: at 1,000 migrations the steps'
// spare room was 170 KB.
template <typename R>
void close_list(void* target) {
  static_cast<std::vector<R>*>(target)->shrink_to_fit();
}

template <typename R>
void open_optional(Decoder& decoder, void* target) {
  decoder.open_record(static_cast<std::optional<R>*>(target)->emplace());
}

template <typename R>
void Binder::list(const char* name, std::vector<R>& records) {
  Field& bound = add(name, FieldKind::RecordList, &records);
  bound.open = &open_element<R>;
  bound.close = &close_list<R>;
}

template <typename R>
void Binder::object(const char* name, std::optional<R>& record) {
  add(name, FieldKind::Record, &record).open = &open_optional<R>;
}

// The document reader's flags (state_codec.cpp) but two: not in situ, so that a payload this one
// gives up on is still there, unchanged, for that reader (each string is unescaped into the
// reader's small stack instead, hot in the cache); and numbers as text (RawNumber above).
constexpr unsigned kFlags = rapidjson::kParseNanAndInfFlag | rapidjson::kParseNumbersAsStringsFlag;

template <unsigned Flags, typename Stream>
std::optional<State> decode(Stream& stream) {
  State state;
  Decoder decoder(state);
  rapidjson::Reader reader;
  reader.Parse<Flags>(stream, decoder);
  if (reader.HasParseError() || !decoder.complete()) return std::nullopt;
  return state;
}

}  // namespace

std::optional<State> decode_state_fast(const char* payload) {
  rapidjson::StringStream stream(payload);
  return decode<kFlags>(stream);
}

std::optional<State> decode_state_fast(SlotStream& payload) {
  // The slot's padding follows the JSON text: SlotStream::rest_is_whitespace() checks it.
  SlotStream::Cursor cursor = payload.cursor();
  auto state = decode<kFlags | rapidjson::kParseStopWhenDoneFlag>(cursor);
  payload.seek(cursor);
  return state;
}

}  // namespace bootstate

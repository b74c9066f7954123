// The state payload (cereal's JSON archive) and the slot framing around it.
//
// Each record's fields are listed once, in a visit_*() function that both the Writer and the
// Reader walk, so the saved and the loaded fields cannot drift apart. The Reader goes through
// cereal's archive node by node instead of cereal's container helpers because it has to do three
// things they do not: give a missing field its default, keep the JSON path for messages, and
// refuse an unknown enum word.
#include "core/state_codec.hpp"

#include <cereal/archives/json.hpp>

#include <array>
#include <concepts>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/crc32c.hpp"

namespace bootstate {
namespace {

// Thrown inside the Reader, caught at decode_state(): a bad payload is data, not a program bug.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename R, typename T>
concept RecordOf = std::same_as<std::remove_const_t<R>, T>;

// The words of each persisted enum, and what to call it in a message.
std::optional<StepState> parse_word(std::string_view text, StepState*) {
  return parse_step_state(text);
}
std::optional<MigrationState> parse_word(std::string_view text, MigrationState*) {
  return parse_migration_state(text);
}
std::optional<AttemptState> parse_word(std::string_view text, AttemptState*) {
  return parse_attempt_state(text);
}
std::optional<OperatorDecision> parse_word(std::string_view text, OperatorDecision*) {
  return parse_operator_decision(text);
}
std::optional<Policy> parse_word(std::string_view text, Policy*) {
  return parse_policy(text);
}
std::string_view kind_of_word(StepState*) {
  return "step state";
}
std::string_view kind_of_word(MigrationState*) {
  return "migration state";
}
std::string_view kind_of_word(AttemptState*) {
  return "attempt state";
}
std::string_view kind_of_word(OperatorDecision*) {
  return "operator decision";
}
std::string_view kind_of_word(Policy*) {
  return "policy";
}

template <typename Io, RecordOf<StepRecord> R>
void visit(Io& io, R& step);
template <typename Io, RecordOf<MigrationRecord> R>
void visit(Io& io, R& migration);
template <typename Io, RecordOf<Attempt> R>
void visit(Io& io, R& attempt);
template <typename Io, RecordOf<State> R>
void visit(Io& io, R& state);

class Writer {
 public:
  explicit Writer(cereal::JSONOutputArchive& archive) : archive_(archive) {}

  template <typename T>
  void field(const char* name, const T& value) {
    if constexpr (std::is_enum_v<T>) {
      archive_(cereal::make_nvp(name, std::string(to_string(value))));
    } else {
      archive_(cereal::make_nvp(name, value));
    }
  }
  template <typename T>
  void required(const char* name, const T& value) {
    field(name, value);
  }

  void list(const char* name, const std::vector<std::string>& values) {
    begin(name, /*array=*/true);
    for (const std::string& value : values) archive_(value);
    archive_.finishNode();
  }
  template <typename R>
  void list(const char* name, const std::vector<R>& records) {
    begin(name, /*array=*/true);
    for (const R& record : records) {
      archive_.startNode();
      visit(*this, record);
      archive_.finishNode();
    }
    archive_.finishNode();
  }

  // An absent optional record is left out; readers take absence as nullopt.
  template <typename R>
  void object(const char* name, const std::optional<R>& record) {
    if (!record) return;
    begin(name, /*array=*/false);
    visit(*this, *record);
    archive_.finishNode();
  }

 private:
  void begin(const char* name, bool array) {
    archive_.setNextName(name);
    archive_.startNode();
    if (array) archive_.makeArray();
  }

  cereal::JSONOutputArchive& archive_;
};

class Reader {
 public:
  explicit Reader(cereal::JSONInputArchive& archive) : archive_(archive) {}

  // A missing field keeps the default it already has: the payload came from an older writer.
  template <typename T>
  void field(const char* name, T& value) {
    if constexpr (std::is_enum_v<T>) {
      std::string word;
      if (!scalar(name, word)) return;
      auto parsed = parse_word(word, static_cast<T*>(nullptr));
      if (!parsed) {
        throw DecodeError(fmt::format("{}: unknown {} \"{}\"", path(name),
                                      kind_of_word(static_cast<T*>(nullptr)), word));
      }
      value = *parsed;
    } else {
      scalar(name, value);
    }
  }

  // Fields every payload version has had; without them the record means nothing.
  template <typename T>
  void required(const char* name, T& value) {
    if (!scalar(name, value)) throw DecodeError(fmt::format("{}: missing", path(name)));
  }

  void list(const char* name, std::vector<std::string>& values) {
    const std::size_t size = enter_array(name);
    values.clear();
    if (size == kAbsent) return;
    for (std::size_t index = 0; index < size; ++index) {
      std::string value;
      try {
        archive_(value);
      } catch (const cereal::Exception&) {
        throw DecodeError(fmt::format("{}[{}]: expected a string", path(name), index));
      }
      values.push_back(std::move(value));
    }
    archive_.finishNode();
  }

  template <typename R>
  void list(const char* name, std::vector<R>& records) {
    const std::size_t size = enter_array(name);
    records.clear();
    if (size == kAbsent) return;
    for (std::size_t index = 0; index < size; ++index) {
      const std::string element = fmt::format("{}[{}]", path(name), index);
      if (!enter_object(nullptr, element)) throw DecodeError(element + ": missing");
      R record;
      Nested nested(*this, element);
      visit(*this, record);
      records.push_back(std::move(record));
      archive_.finishNode();
    }
    archive_.finishNode();
  }

  template <typename R>
  void object(const char* name, std::optional<R>& record) {
    record.reset();
    const std::string here = path(name);
    if (!enter_object(name, here)) return;
    R value;
    Nested nested(*this, here);
    visit(*this, value);
    record = std::move(value);
    archive_.finishNode();
  }

  // The root must be an object: cereal would read an array's elements as unnamed fields.
  void check_root_is_object() {
    if (archive_.getNodeName() != nullptr) return;
    if (node_is_array()) throw DecodeError("the payload is a JSON array, not an object");
  }

 private:
  static constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);

  // Sets the path prefix while the fields of a nested record are read.
  class Nested {
   public:
    Nested(Reader& reader, std::string path)
        : reader_(reader), saved_(std::exchange(reader.path_, std::move(path))) {}
    ~Nested() { reader_.path_ = std::move(saved_); }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;

   private:
    Reader& reader_;
    std::string saved_;
  };

  std::string path(const char* name) const {
    return path_.empty() ? std::string(name) : fmt::format("{}.{}", path_, name);
  }

  // False when the field is absent. cereal signals "no such name" with a plain
  // cereal::Exception and a value of the wrong type with RapidJSONException (its
  // RAPIDJSON_ASSERT), so the two are told apart by type.
  template <typename T>
  bool scalar(const char* name, T& value) {
    try {
      archive_(cereal::make_nvp(name, value));
      return true;
    } catch (const cereal::RapidJSONException&) {
      throw DecodeError(fmt::format("{}: value of the wrong type", path(name)));
    } catch (const cereal::Exception&) {
      return false;
    }
  }

  // Starts the node `name` (or the next array element when name is null); false when absent.
  bool start(const char* name, const std::string& where, std::string_view expected) {
    if (name != nullptr) archive_.setNextName(name);
    try {
      archive_.startNode();
      return true;
    } catch (const cereal::RapidJSONException&) {
      throw DecodeError(fmt::format("{}: expected {}", where, expected));
    } catch (const cereal::Exception&) {
      return false;
    }
  }

  // Inside a started node: is it an array? cereal only exposes this through loadSize(), which
  // asserts (throws) on anything but an array.
  bool node_is_array() {
    try {
      cereal::size_type size = 0;
      archive_.loadSize(size);
      return true;
    } catch (const cereal::RapidJSONException&) {
      return false;
    }
  }

  bool enter_object(const char* name, const std::string& where) {
    if (!start(name, where, "an object")) return false;
    // A non-empty object has a named first member; anything else may be an array in disguise.
    if (archive_.getNodeName() == nullptr && node_is_array()) {
      throw DecodeError(fmt::format("{}: expected an object, found an array", where));
    }
    return true;
  }

  std::size_t enter_array(const char* name) {
    if (!start(name, path(name), "an array")) return kAbsent;
    cereal::size_type size = 0;
    try {
      archive_.loadSize(size);
    } catch (const cereal::RapidJSONException&) {
      throw DecodeError(fmt::format("{}: expected an array", path(name)));
    }
    return static_cast<std::size_t>(size);
  }

  cereal::JSONInputArchive& archive_;
  std::string path_;
};

template <typename Io, RecordOf<StepRecord> R>
void visit(Io& io, R& step) {
  io.required("id", step.id);
  io.field("state", step.state);
  io.field("attempts", step.attempts);
  io.field("exit_status", step.exit_status);
  io.field("message", step.message);
  io.field("started_usec", step.started_usec);
  io.field("finished_usec", step.finished_usec);
  io.field("boot_id", step.boot_id);
  io.field("awaiting_reboot", step.awaiting_reboot);
  io.field("undo_record", step.undo_record);
}

template <typename Io, RecordOf<MigrationRecord> R>
void visit(Io& io, R& migration) {
  io.required("id", migration.id);
  io.field("state", migration.state);
  io.field("policy", migration.policy);
  io.field("decision", migration.decision);
  io.field("digest", migration.digest);
  io.field("definition_json", migration.definition_json);
  io.field("generation", migration.generation);
  io.field("attempt", migration.attempt);
  io.field("backup_taken", migration.backup_taken);
  io.list("steps", migration.steps);
  io.list("undo_steps", migration.undo_steps);
  io.field("message", migration.message);
}

template <typename Io, RecordOf<Attempt> R>
void visit(Io& io, R& attempt) {
  io.field("number", attempt.number);
  io.field("generation", attempt.generation);
  io.field("plan_digest", attempt.plan_digest);
  io.field("state", attempt.state);
  io.field("reason", attempt.reason);
  io.list("boot_ids", attempt.boot_ids);
  io.field("boots_without_progress", attempt.boots_without_progress);
  io.field("entry", attempt.entry);
  io.field("started_usec", attempt.started_usec);
  io.field("finished_usec", attempt.finished_usec);
}

template <typename Io, RecordOf<State> R>
void visit(Io& io, R& state) {
  io.object("attempt", state.attempt);
  io.list("migrations", state.migrations);
  io.field("last_good_generation", state.last_good_generation);
  io.field("last_good_entry", state.last_good_entry);
  io.list("history", state.history);
  io.field("next_attempt_number", state.next_attempt_number);
}

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
constexpr std::size_t kCrcOffset = 28;

}  // namespace

std::string encode_state(const State& state) {
  std::ostringstream stream;
  {
    // The archive completes the JSON text only when it is destroyed.
    cereal::JSONOutputArchive archive(stream, cereal::JSONOutputArchive::Options::NoIndent());
    archive(cereal::make_nvp("payload_version", kPayloadVersion));
    Writer writer(archive);
    visit(writer, state);
  }
  return std::move(stream).str();
}

Expected<State> decode_state(std::string_view payload) {
  try {
    std::istringstream stream{std::string(payload)};
    cereal::JSONInputArchive archive(stream);
    Reader reader(archive);
    reader.check_root_is_object();
    // Any version is read: a newer writer only adds fields, which the visit ignores.
    std::uint32_t payload_version = 0;
    reader.required("payload_version", payload_version);
    if (payload_version == 0) throw DecodeError("payload_version: 0 was never written");
    State state;
    visit(reader, state);
    return state;
  } catch (const DecodeError& error) {
    return make_error(ErrorCode::Corrupt, "state payload: {}", error.what());
  } catch (const cereal::RapidJSONException&) {
    // Raised while parsing, before any field is read: the text is not a JSON object.
    return make_error(ErrorCode::Corrupt, "state payload: not a JSON object");
  } catch (const std::exception& error) {
    return make_error(ErrorCode::Corrupt, "state payload: {}", error.what());
  }
}

std::string encode_slot(std::uint64_t sequence, std::string_view payload) {
  std::string bytes;
  bytes.reserve(kSlotHeaderSize + payload.size());
  bytes.append(kSlotMagic);
  put_u32(bytes, kSlotFormatVersion);
  put_u64(bytes, sequence);
  put_u64(bytes, payload.size());
  const std::uint32_t crc = crc32c(payload, crc32c(bytes));
  put_u32(bytes, crc);
  bytes.append(payload);
  return bytes;
}

Expected<SlotContents> decode_slot_frame(std::string_view bytes) {
  if (bytes.size() < kSlotHeaderSize) {
    return make_error(ErrorCode::Corrupt, "truncated: {} bytes, the header alone is {}",
                      bytes.size(), kSlotHeaderSize);
  }
  if (bytes.substr(0, kSlotMagic.size()) != kSlotMagic) {
    return make_error(ErrorCode::Corrupt, "bad magic: not a bootstate state slot");
  }
  const auto length = get_le<std::uint64_t>(bytes, kLengthOffset);
  const std::uint64_t available = bytes.size() - kSlotHeaderSize;
  if (length != available) {
    return make_error(ErrorCode::Corrupt,
                      "length mismatch: the header says {} payload bytes, the slot holds {}",
                      length, available);
  }
  const std::string_view payload = bytes.substr(kSlotHeaderSize);
  const auto stored = get_le<std::uint32_t>(bytes, kCrcOffset);
  const std::uint32_t computed = crc32c(payload, crc32c(bytes.substr(0, kCrcOffset)));
  if (stored != computed) {
    return make_error(ErrorCode::Corrupt, "checksum mismatch: stored {:#010x}, computed {:#010x}",
                      stored, computed);
  }
  SlotContents contents;
  contents.format_version = get_le<std::uint32_t>(bytes, kVersionOffset);
  contents.sequence = get_le<std::uint64_t>(bytes, kSequenceOffset);
  contents.payload = std::string(payload);
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

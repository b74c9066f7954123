// The fields of the state payload, for the codec's writer and its two readers (state_codec.cpp,
// state_fast_decode.cpp): each record's fields are listed once, in a visit() that every one of
// them walks, so what is saved and what is loaded cannot drift apart. Internal to those files.
#pragma once

#include <rapidjson/document.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/state.hpp"

namespace bootstate::state_fields {

// Thrown inside the readers, caught at decode_state(): a bad payload is data, not a program bug.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// An enum word this build does not know: the payload was written by a newer bootstate (words
// are only ever added), so it is Unsupported, not Corrupt - the store must not overwrite it.
class NewerWordError : public DecodeError {
 public:
  using DecodeError::DecodeError;
};

template <typename R, typename T>
concept RecordOf = std::same_as<std::remove_const_t<R>, T>;

// The words of each persisted enum, and what to call it in a message.
inline std::optional<StepState> parse_word(std::string_view text, StepState*) {
  return parse_step_state(text);
}
inline std::optional<MigrationState> parse_word(std::string_view text, MigrationState*) {
  return parse_migration_state(text);
}
inline std::optional<AttemptState> parse_word(std::string_view text, AttemptState*) {
  return parse_attempt_state(text);
}
inline std::optional<OperatorDecision> parse_word(std::string_view text, OperatorDecision*) {
  return parse_operator_decision(text);
}
inline std::optional<Policy> parse_word(std::string_view text, Policy*) {
  return parse_policy(text);
}
inline std::string_view kind_of_word(StepState*) {
  return "step state";
}
inline std::string_view kind_of_word(MigrationState*) {
  return "migration state";
}
inline std::string_view kind_of_word(AttemptState*) {
  return "attempt state";
}
inline std::string_view kind_of_word(OperatorDecision*) {
  return "operator decision";
}
inline std::string_view kind_of_word(Policy*) {
  return "policy";
}

// One JSON value read into one field: each C++ type accepts exactly the JSON numbers that fit it,
// as cereal's reader did; an enum takes only a word this build knows.
enum class Conversion { Done, WrongType, UnknownWord };

template <typename T>
Conversion convert(const rapidjson::Value& node, T& value) {
  if constexpr (std::is_enum_v<T>) {
    if (!node.IsString()) return Conversion::WrongType;
    auto parsed = parse_word(std::string_view(node.GetString(), node.GetStringLength()),
                             static_cast<T*>(nullptr));
    if (!parsed) return Conversion::UnknownWord;
    value = *parsed;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!node.IsString()) return Conversion::WrongType;
    value.assign(node.GetString(), node.GetStringLength());
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!node.IsBool()) return Conversion::WrongType;
    value = node.GetBool();
  } else if constexpr (std::is_same_v<T, int>) {
    if (!node.IsInt()) return Conversion::WrongType;
    value = node.GetInt();
  } else if constexpr (std::is_same_v<T, std::uint32_t>) {
    if (!node.IsUint()) return Conversion::WrongType;
    value = node.GetUint();
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (!node.IsInt64()) return Conversion::WrongType;
    value = node.GetInt64();
  } else {
    static_assert(std::is_same_v<T, std::uint64_t>, "a State field of a type with no JSON form");
    if (!node.IsUint64()) return Conversion::WrongType;
    value = node.GetUint64();
  }
  return Conversion::Done;
}

template <typename Io, RecordOf<StepRecord> R>
void visit(Io& io, R& step);
template <typename Io, RecordOf<MigrationRecord> R>
void visit(Io& io, R& migration);
template <typename Io, RecordOf<Attempt> R>
void visit(Io& io, R& attempt);
template <typename Io, RecordOf<ItemResolutionRecord> R>
void visit(Io& io, R& resolution);
template <typename Io, RecordOf<ItemRecord> R>
void visit(Io& io, R& item);
template <typename Io, RecordOf<ChoiceRecord> R>
void visit(Io& io, R& choice);
template <typename Io, RecordOf<State> R>
void visit(Io& io, R& state);

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

// Issue #15 (checks): items and choices.
template <typename Io, RecordOf<ItemResolutionRecord> R>
void visit(Io& io, R& resolution) {
  io.required("id", resolution.id);
  io.field("description", resolution.description);
}

template <typename Io, RecordOf<ItemRecord> R>
void visit(Io& io, R& item) {
  io.required("id", item.id);
  io.field("check", item.check);
  io.field("severity", item.severity);
  io.field("message", item.message);
  io.list("resolutions", item.resolutions);
  io.field("default_resolution", item.default_resolution);
  io.field("generation", item.generation);
  io.field("attempt", item.attempt);
  io.field("reported_usec", item.reported_usec);
}

template <typename Io, RecordOf<ChoiceRecord> R>
void visit(Io& io, R& choice) {
  io.required("item", choice.item);
  io.field("check", choice.check);
  io.field("resolution", choice.resolution);
  io.field("chosen_usec", choice.chosen_usec);
  io.field("generation", choice.generation);
}

template <typename Io, RecordOf<State> R>
void visit(Io& io, R& state) {
  io.object("attempt", state.attempt);
  io.list("migrations", state.migrations);
  io.field("last_good_generation", state.last_good_generation);
  io.field("last_good_entry", state.last_good_entry);
  io.list("history", state.history);
  io.field("next_attempt_number", state.next_attempt_number);
  io.unless_default("store_reset_usec", state.store_reset_usec);  // issue #13 (engine helper)
  io.list_unless_empty("items", state.items);                     // issue #15 (checks)
  io.list_unless_empty("choices", state.choices);                 // issue #15 (checks)
}

}  // namespace bootstate::state_fields

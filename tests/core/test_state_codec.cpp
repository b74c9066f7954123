// The state payload and the slot framing: round trips, compatibility in both directions, and
// every way a slot can be damaged.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"

namespace bootstate {
namespace {

StepRecord full_step(std::string id, StepState state) {
  StepRecord step;
  step.id = std::move(id);
  step.state = state;
  step.attempts = 3;
  step.exit_status = 7;
  step.message = "exit status 7 \"quoted\" \\ and ünïcode\n";
  step.started_usec = 1'700'000'000'000'001;
  step.finished_usec = 1'700'000'000'000'002;
  step.boot_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  step.awaiting_reboot = true;
  step.undo_record = R"({"old_name":"root"})";
  return step;
}

Attempt full_attempt(std::uint64_t number, AttemptState state) {
  Attempt attempt;
  attempt.number = number;
  attempt.generation = "/nix/store/abc-nixos-system";
  attempt.plan_digest = "0123456789abcdef";
  attempt.state = state;
  attempt.reason = "step s1 of m1 failed";
  attempt.boot_ids = {"boot-a", "boot-b"};
  attempt.boots_without_progress = 2;
  attempt.entry = "nixos-generation-42";
  attempt.started_usec = -5;  // negative values survive (clock before 1970 in a broken RTC)
  attempt.finished_usec = 99;
  return attempt;
}

// A State with every field away from its default.
State full_state() {
  State state;
  state.attempt = full_attempt(9, AttemptState::InProgress);
  MigrationRecord migration;
  migration.id = "pg-upgrade";
  migration.state = MigrationState::Undone;
  migration.policy = Policy::Optional;
  migration.decision = OperatorDecision::Accepted;
  migration.digest = "fedcba9876543210";
  migration.definition_json = R"({"id":"pg-upgrade","steps":[]})";
  migration.generation = "/nix/store/def-nixos-system";
  migration.attempt = 8;
  migration.backup_taken = true;
  migration.steps = {full_step("dump", StepState::Done), full_step("load", StepState::Skipped)};
  migration.undo_steps = {full_step("restore", StepState::Running)};
  migration.message = "undone after fallback";
  state.migrations = {migration};
  state.last_good_generation = "/nix/store/ghi-nixos-system";
  state.last_good_entry = "nixos-generation-41";
  state.history = {full_attempt(7, AttemptState::Abandoned), full_attempt(8, AttemptState::Failed)};
  state.next_attempt_number = 10;
  return state;
}

void check_step(const StepRecord& actual, const StepRecord& expected) {
  CHECK(actual.id == expected.id);
  CHECK(actual.state == expected.state);
  CHECK(actual.attempts == expected.attempts);
  CHECK(actual.exit_status == expected.exit_status);
  CHECK(actual.message == expected.message);
  CHECK(actual.started_usec == expected.started_usec);
  CHECK(actual.finished_usec == expected.finished_usec);
  CHECK(actual.boot_id == expected.boot_id);
  CHECK(actual.awaiting_reboot == expected.awaiting_reboot);
  CHECK(actual.undo_record == expected.undo_record);
}

void check_attempt(const Attempt& actual, const Attempt& expected) {
  CHECK(actual.number == expected.number);
  CHECK(actual.generation == expected.generation);
  CHECK(actual.plan_digest == expected.plan_digest);
  CHECK(actual.state == expected.state);
  CHECK(actual.reason == expected.reason);
  CHECK(actual.boot_ids == expected.boot_ids);
  CHECK(actual.boots_without_progress == expected.boots_without_progress);
  CHECK(actual.entry == expected.entry);
  CHECK(actual.started_usec == expected.started_usec);
  CHECK(actual.finished_usec == expected.finished_usec);
}

void check_state(const State& actual, const State& expected) {
  REQUIRE(actual.attempt.has_value() == expected.attempt.has_value());
  if (expected.attempt) check_attempt(*actual.attempt, *expected.attempt);
  REQUIRE(actual.migrations.size() == expected.migrations.size());
  for (std::size_t m = 0; m < expected.migrations.size(); ++m) {
    const MigrationRecord& a = actual.migrations[m];
    const MigrationRecord& e = expected.migrations[m];
    CHECK(a.id == e.id);
    CHECK(a.state == e.state);
    CHECK(a.policy == e.policy);
    CHECK(a.decision == e.decision);
    CHECK(a.digest == e.digest);
    CHECK(a.definition_json == e.definition_json);
    CHECK(a.generation == e.generation);
    CHECK(a.attempt == e.attempt);
    CHECK(a.backup_taken == e.backup_taken);
    CHECK(a.message == e.message);
    REQUIRE(a.steps.size() == e.steps.size());
    for (std::size_t s = 0; s < e.steps.size(); ++s) check_step(a.steps[s], e.steps[s]);
    REQUIRE(a.undo_steps.size() == e.undo_steps.size());
    for (std::size_t s = 0; s < e.undo_steps.size(); ++s) {
      check_step(a.undo_steps[s], e.undo_steps[s]);
    }
  }
  CHECK(actual.last_good_generation == expected.last_good_generation);
  CHECK(actual.last_good_entry == expected.last_good_entry);
  REQUIRE(actual.history.size() == expected.history.size());
  for (std::size_t h = 0; h < expected.history.size(); ++h) {
    check_attempt(actual.history[h], expected.history[h]);
  }
  CHECK(actual.next_attempt_number == expected.next_attempt_number);
}

Error decode_error(std::string_view payload) {
  auto decoded = decode_state(payload);
  REQUIRE_FALSE(decoded.has_value());
  return decoded.error();
}

}  // namespace

TEST_CASE("state enums: every word round-trips and unknown words are refused") {
  for (auto state : {StepState::Pending, StepState::Running, StepState::Done, StepState::Failed,
                     StepState::Skipped}) {
    CHECK(parse_step_state(to_string(state)) == state);
  }
  for (auto state : {MigrationState::Pending, MigrationState::Running, MigrationState::Applied,
                     MigrationState::Failed, MigrationState::Declined, MigrationState::Undone}) {
    CHECK(parse_migration_state(to_string(state)) == state);
  }
  for (auto state : {AttemptState::InProgress, AttemptState::Complete, AttemptState::Failed,
                     AttemptState::Abandoned}) {
    CHECK(parse_attempt_state(to_string(state)) == state);
  }
  for (auto decision :
       {OperatorDecision::None, OperatorDecision::Accepted, OperatorDecision::Declined}) {
    CHECK(parse_operator_decision(to_string(decision)) == decision);
  }
  CHECK(to_string(AttemptState::InProgress) == "in-progress");
  CHECK(to_string(StepState::Skipped) == "skipped");
  CHECK_FALSE(parse_step_state("Done").has_value());
  CHECK_FALSE(parse_migration_state("").has_value());
  CHECK_FALSE(parse_attempt_state("in_progress").has_value());
  CHECK_FALSE(parse_operator_decision("accept").has_value());
}

TEST_CASE("state: find and touched") {
  State state = full_state();
  CHECK(state.find("pg-upgrade") == &state.migrations[0]);
  CHECK(state.find("nope") == nullptr);
  const State& constant = state;
  CHECK(constant.find("pg-upgrade") == &state.migrations[0]);

  MigrationRecord record;
  record.steps = {StepRecord{}, StepRecord{}};
  CHECK_FALSE(record.touched());
  record.backup_taken = true;
  CHECK(record.touched());
  record.backup_taken = false;
  record.steps[1].attempts = 1;
  CHECK(record.touched());
  record.steps[1].attempts = 0;
  record.undo_steps = {StepRecord{}};
  record.undo_steps[0].state = StepState::Running;
  CHECK(record.touched());
}

TEST_CASE("crc32c: the Castagnoli check value, and chaining equals one pass") {
  CHECK(crc32c("123456789") == 0xE3069283U);
  CHECK(crc32c("") == 0U);
  CHECK(crc32c("56789", crc32c("1234")) == 0xE3069283U);
}

TEST_CASE("payload: a State with every field set survives encode and decode") {
  const State state = full_state();
  const std::string payload = encode_state(state);
  auto decoded = decode_state(payload);
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  check_state(*decoded, state);
  CHECK(encode_state(*decoded) == payload);
}

TEST_CASE("payload: a default State round-trips, and no attempt stays no attempt") {
  const State state;
  auto decoded = decode_state(encode_state(state));
  REQUIRE(decoded.has_value());
  check_state(*decoded, state);
  CHECK_FALSE(decoded->attempt.has_value());
}

TEST_CASE("payload: enums are stored as their words, with the payload version") {
  const std::string payload = encode_state(full_state());
  CHECK(payload.find(R"("payload_version": 1)") != std::string::npos);
  CHECK(payload.find(R"("state": "in-progress")") != std::string::npos);
  CHECK(payload.find(R"("state": "undone")") != std::string::npos);
  CHECK(payload.find(R"("state": "skipped")") != std::string::npos);
  CHECK(payload.find(R"("policy": "optional")") != std::string::npos);
  CHECK(payload.find(R"("decision": "accepted")") != std::string::npos);
  // No indentation (cereal's writer still puts each value on its own line).
  CHECK(payload.find("\n ") == std::string::npos);
}

// An older reader (this build) reads what a newer writer produced: extra fields everywhere,
// of every JSON type, before and after the known ones, and a higher payload_version.
TEST_CASE("payload compat: unknown fields at every level are ignored") {
  const std::string newer = R"({
    "future_top": {"deep": [1, {"x": null}]},
    "payload_version": 7,
    "attempt": {"number": 4, "future_attempt": [true], "state": "failed",
                "boot_ids": ["b1"], "reason": "r", "generation": "/nix/store/g"},
    "migrations": [{
      "future_first": "x",
      "id": "m1", "state": "applied", "policy": "recommended", "decision": "declined",
      "steps": [{"id": "s1", "state": "done", "attempts": 2, "future_step": {"a": 1},
                 "exit_status": 0}],
      "undo_steps": [{"future_undo": 3.5, "id": "u1", "state": "pending"}],
      "future_migration": [[], {}]
    }],
    "history": [{"number": 3, "state": "complete", "future_history": "y"}],
    "last_good_generation": "/nix/store/good",
    "next_attempt_number": 5,
    "future_bottom": 12345678901234567890
  })";
  auto decoded = decode_state(newer);
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  REQUIRE(decoded->attempt.has_value());
  CHECK(decoded->attempt->number == 4);
  CHECK(decoded->attempt->state == AttemptState::Failed);
  CHECK(decoded->attempt->boot_ids == std::vector<std::string>{"b1"});
  CHECK(decoded->attempt->generation == "/nix/store/g");
  REQUIRE(decoded->migrations.size() == 1);
  const MigrationRecord& migration = decoded->migrations[0];
  CHECK(migration.id == "m1");
  CHECK(migration.state == MigrationState::Applied);
  CHECK(migration.policy == Policy::Recommended);
  CHECK(migration.decision == OperatorDecision::Declined);
  REQUIRE(migration.steps.size() == 1);
  CHECK(migration.steps[0].state == StepState::Done);
  CHECK(migration.steps[0].attempts == 2);
  CHECK(migration.steps[0].exit_status == 0);
  REQUIRE(migration.undo_steps.size() == 1);
  CHECK(migration.undo_steps[0].id == "u1");
  REQUIRE(decoded->history.size() == 1);
  CHECK(decoded->history[0].state == AttemptState::Complete);
  CHECK(decoded->last_good_generation == "/nix/store/good");
  CHECK(decoded->next_attempt_number == 5);
}

// A newer reader (this build) reads what an older writer produced: fields missing everywhere.
TEST_CASE("payload compat: missing fields take their defaults") {
  const std::string older = R"({"payload_version": 1,
    "attempt": {},
    "migrations": [{"id": "m1", "steps": [{"id": "s1"}]}],
    "history": [{}]})";
  auto decoded = decode_state(older);
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  const State defaults;
  REQUIRE(decoded->attempt.has_value());
  check_attempt(*decoded->attempt, Attempt{});
  REQUIRE(decoded->migrations.size() == 1);
  const MigrationRecord& migration = decoded->migrations[0];
  CHECK(migration.state == MigrationState::Pending);
  CHECK(migration.policy == Policy::Required);
  CHECK(migration.decision == OperatorDecision::None);
  CHECK(migration.undo_steps.empty());
  CHECK_FALSE(migration.backup_taken);
  REQUIRE(migration.steps.size() == 1);
  StepRecord expected_step;
  expected_step.id = "s1";
  check_step(migration.steps[0], expected_step);
  REQUIRE(decoded->history.size() == 1);
  check_attempt(decoded->history[0], Attempt{});
  CHECK(decoded->next_attempt_number == defaults.next_attempt_number);

  auto minimal = decode_state(R"({"payload_version": 1})");
  REQUIRE(minimal.has_value());
  check_state(*minimal, defaults);
}

// A word this build does not know was written by a newer bootstate (words are only added):
// Unsupported, so that the store refuses to write over it (issue #13; it used to be Corrupt).
TEST_CASE("payload: unknown enum words are Unsupported (a newer writer) and name the JSON path") {
  Error error = decode_error(
      R"({"payload_version":1,"migrations":[{"id":"a"},{"id":"b","steps":[{"id":"s","state":"paused"}]}]})");
  CHECK(error.code == ErrorCode::Unsupported);
  CHECK(error.message == R"(state payload: migrations[1].steps[0].state: unknown step state )"
                         R"("paused" (written by a newer bootstate))");
  CHECK(decode_error(R"({"payload_version":1,"attempt":{"state":"in_progress"}})").message ==
        R"(state payload: attempt.state: unknown attempt state "in_progress" (written by a )"
        R"(newer bootstate))");
  Error wrong_type = decode_error(R"({"payload_version":1,"history":[{"state":2}]})");
  CHECK(wrong_type.code == ErrorCode::Corrupt);
  CHECK(wrong_type.message == "state payload: history[0].state: value of the wrong type");
  CHECK(
      decode_error(R"({"payload_version":1,"migrations":[{"id":"a","policy":"maybe"}]})").message ==
      R"(state payload: migrations[0].policy: unknown policy "maybe" (written by a newer )"
      R"(bootstate))");
}

TEST_CASE("payload: deep nesting and long numbers in unknown fields are safe") {
  // An unknown field nested 300,000 deep overflowed the stack (SIGSEGV); the bound is 128.
  Error deep = decode_error(R"({"payload_version":1,"future":)" + std::string(300000, '[') +
                            std::string(300000, ']') + "}");
  CHECK(deep.code == ErrorCode::Corrupt);
  CHECK(deep.message == "state payload:1:158: arrays and objects nested deeper than 128 levels");
  // 127 levels below the payload's own object are read (and ignored).
  auto nested = decode_state(R"({"payload_version":1,"future":)" + std::string(127, '[') +
                             std::string(127, ']') + "}");
  CHECK_MESSAGE(nested.has_value(), nested.error().message);
  // Read out of bounds in rapidjson's full-precision number parser (ASan; a SIGSEGV in the
  // binary): fifty 9s after the point and an exponent of -400, in a field this build ignores.
  for (const std::string& number :
       {"530002.912" + std::string(50, '9') + "5e-400", "1" + std::string(300, '0') + "e-800",
        "0." + std::string(1000, '0') + "1e400", std::string("-1e-9999")}) {
    auto decoded =
        decode_state(R"({"payload_version":1,"x":)" + number + ",\"next_attempt_number\":3}");
    REQUIRE_MESSAGE(decoded.has_value(), number << ": " << decoded.error().message);
    CHECK(decoded->next_attempt_number == 3);
  }
  // The exponent that overflowed rapidjson's int (an out-of-bounds table read), refused first.
  Error exponent =
      decode_error(R"({"payload_version":1,"x":0.)" + std::string(100, '0') + "1e-2147483600}");
  CHECK(exponent.code == ErrorCode::Corrupt);
  CHECK(exponent.message == "state payload:1:26: a number with an exponent of more than 4 digits");
}

TEST_CASE("payload: malformed payloads are Corrupt, never a crash") {
  const char* cases[][2] = {
      {"", "state payload: not a JSON object"},
      {"{", "state payload: not a JSON object"},
      {"nonsense", "state payload: not a JSON object"},
      {"42", "state payload: not a JSON object"},
      {R"({"payload_version":1} trailing)", "state payload: not a JSON object"},
      {R"([1,2])", "state payload: the payload is a JSON array, not an object"},
      {R"({})", "state payload: payload_version: missing"},
      {R"({"payload_version":0})", "state payload: payload_version: 0 was never written"},
      {R"({"payload_version":-1})", "state payload: payload_version: value of the wrong type"},
      {R"({"payload_version":1,"attempt":[]})",
       "state payload: attempt: expected an object, found an array"},
      {R"({"payload_version":1,"attempt":[{"number":1}]})",
       "state payload: attempt: expected an object, found an array"},
      {R"({"payload_version":1,"attempt":"x"})", "state payload: attempt: expected an object"},
      {R"({"payload_version":1,"migrations":{}})", "state payload: migrations: expected an array"},
      {R"({"payload_version":1,"migrations":{"id":"x"}})",
       "state payload: migrations: expected an array"},
      {R"({"payload_version":1,"migrations":[{}]})", "state payload: migrations[0].id: missing"},
      {R"({"payload_version":1,"migrations":[3]})",
       "state payload: migrations[0]: expected an object"},
      {R"({"payload_version":1,"migrations":[[]]})",
       "state payload: migrations[0]: expected an object, found an array"},
      {R"({"payload_version":1,"attempt":{"boot_ids":[1]}})",
       "state payload: attempt.boot_ids[0]: expected a string"},
      {R"({"payload_version":1,"attempt":{"boots_without_progress":-1}})",
       "state payload: attempt.boots_without_progress: value of the wrong type"},
      {R"({"payload_version":1,"next_attempt_number":1.5})",
       "state payload: next_attempt_number: value of the wrong type"},
  };
  for (const auto& [payload, message] : cases) {
    CAPTURE(payload);
    const Error error = decode_error(payload);
    CHECK(error.code == ErrorCode::Corrupt);
    CHECK(error.message == message);
  }
}

namespace {
// encode_state(full_state()) as written by the cereal-based codec (commit 994e60c), captured
// before the codec moved to rapidjson: stored states of that build must still decode, and this
// build must write the same bytes, so that build reads what this one writes.
constexpr std::string_view kCerealPayload = R"json({
"payload_version": 1,
"attempt": {
"number": 9,
"generation": "/nix/store/abc-nixos-system",
"plan_digest": "0123456789abcdef",
"state": "in-progress",
"reason": "step s1 of m1 failed",
"boot_ids": [
"boot-a",
"boot-b"
],
"boots_without_progress": 2,
"entry": "nixos-generation-42",
"started_usec": -5,
"finished_usec": 99
},
"migrations": [
{
"id": "pg-upgrade",
"state": "undone",
"policy": "optional",
"decision": "accepted",
"digest": "fedcba9876543210",
"definition_json": "{\"id\":\"pg-upgrade\",\"steps\":[]}",
"generation": "/nix/store/def-nixos-system",
"attempt": 8,
"backup_taken": true,
"steps": [
{
"id": "dump",
"state": "done",
"attempts": 3,
"exit_status": 7,
"message": "exit status 7 \"quoted\" \\ and ünïcode\n",
"started_usec": 1700000000000001,
"finished_usec": 1700000000000002,
"boot_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
"awaiting_reboot": true,
"undo_record": "{\"old_name\":\"root\"}"
},
{
"id": "load",
"state": "skipped",
"attempts": 3,
"exit_status": 7,
"message": "exit status 7 \"quoted\" \\ and ünïcode\n",
"started_usec": 1700000000000001,
"finished_usec": 1700000000000002,
"boot_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
"awaiting_reboot": true,
"undo_record": "{\"old_name\":\"root\"}"
}
],
"undo_steps": [
{
"id": "restore",
"state": "running",
"attempts": 3,
"exit_status": 7,
"message": "exit status 7 \"quoted\" \\ and ünïcode\n",
"started_usec": 1700000000000001,
"finished_usec": 1700000000000002,
"boot_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
"awaiting_reboot": true,
"undo_record": "{\"old_name\":\"root\"}"
}
],
"message": "undone after fallback"
}
],
"last_good_generation": "/nix/store/ghi-nixos-system",
"last_good_entry": "nixos-generation-41",
"history": [
{
"number": 7,
"generation": "/nix/store/abc-nixos-system",
"plan_digest": "0123456789abcdef",
"state": "abandoned",
"reason": "step s1 of m1 failed",
"boot_ids": [
"boot-a",
"boot-b"
],
"boots_without_progress": 2,
"entry": "nixos-generation-42",
"started_usec": -5,
"finished_usec": 99
},
{
"number": 8,
"generation": "/nix/store/abc-nixos-system",
"plan_digest": "0123456789abcdef",
"state": "failed",
"reason": "step s1 of m1 failed",
"boot_ids": [
"boot-a",
"boot-b"
],
"boots_without_progress": 2,
"entry": "nixos-generation-42",
"started_usec": -5,
"finished_usec": 99
}
],
"next_attempt_number": 10
})json";
}  // namespace

TEST_CASE("payload compat: the cereal-based codec's payload decodes, and is written unchanged") {
  auto decoded = decode_state(kCerealPayload);
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  check_state(*decoded, full_state());
  CHECK(encode_state(full_state()) == kCerealPayload);
  CHECK(encode_state(State{}) ==
        "{\n\"payload_version\": 1,\n\"migrations\": [],\n\"last_good_generation\": \"\",\n"
        "\"last_good_entry\": \"\",\n\"history\": [],\n\"next_attempt_number\": 1\n}");
}

TEST_CASE("payload: strings keep every byte, NULs and invalid UTF-8 included") {
  State state;
  state.last_good_entry = std::string("a\0b\xff\xfe\x01\"\\z", 9);
  state.migrations.resize(1);
  state.migrations[0].id = std::string("\0", 1);
  state.migrations[0].definition_json = "\xc3\x28 not UTF-8";
  auto decoded = decode_state(encode_state(state));
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  check_state(*decoded, state);
}

// Order is the writer's business: a reader finds each field wherever it is.
TEST_CASE("payload compat: fields in any order, and NaN in an unknown field, are read") {
  auto decoded = decode_state(R"({"next_attempt_number": 3, "future": NaN, "history": [
      {"finished_usec": 2, "state": "failed", "number": 1, "later": -Infinity}],
      "migrations": [{"steps": [{"state": "running", "id": "s"}], "state": "running",
      "id": "m"}], "payload_version": 1})");
  REQUIRE_MESSAGE(decoded.has_value(), (decoded ? std::string() : decoded.error().message));
  CHECK(decoded->next_attempt_number == 3);
  REQUIRE(decoded->history.size() == 1);
  CHECK(decoded->history[0].number == 1);
  CHECK(decoded->history[0].state == AttemptState::Failed);
  CHECK(decoded->history[0].finished_usec == 2);
  REQUIRE(decoded->migrations.size() == 1);
  CHECK(decoded->migrations[0].id == "m");
  CHECK(decoded->migrations[0].state == MigrationState::Running);
  REQUIRE(decoded->migrations[0].steps.size() == 1);
  CHECK(decoded->migrations[0].steps[0].id == "s");
  CHECK(decoded->migrations[0].steps[0].state == StepState::Running);
}

TEST_CASE("payload: a value that does not fit its field is Corrupt, with the path") {
  const char* cases[][2] = {
      {R"({"payload_version":1,"migrations":[{"id":"m","steps":[{"id":"s","exit_status":3000000000}]}]})",
       "state payload: migrations[0].steps[0].exit_status: value of the wrong type"},
      {R"({"payload_version":1,"migrations":[{"id":"m","undo_steps":[{"id":"u"},{"id":"v","attempts":-1}]}]})",
       "state payload: migrations[0].undo_steps[1].attempts: value of the wrong type"},
      {R"({"payload_version":1,"migrations":[{"id":"m","backup_taken":1}]})",
       "state payload: migrations[0].backup_taken: value of the wrong type"},
      {R"({"payload_version":1,"migrations":[{"id":7}]})",
       "state payload: migrations[0].id: value of the wrong type"},
      {R"({"payload_version":1,"history":[{"started_usec":1.0}]})",
       "state payload: history[0].started_usec: value of the wrong type"},
      {R"({"payload_version":1,"history":[{},null]})",
       "state payload: history[1]: expected an object"},
      {R"({"payload_version":1,"last_good_entry":null})",
       "state payload: last_good_entry: value of the wrong type"},
      {R"({"payload_version":1,"attempt":null})", "state payload: attempt: expected an object"},
      {R"({"payload_version":1,"attempt":{"boot_ids":"b"}})",
       "state payload: attempt.boot_ids: expected an array"},
      // Unknown words are Unsupported (a newer writer): see "unknown enum words" above.
  };
  for (const auto& [payload, message] : cases) {
    CAPTURE(payload);
    const Error error = decode_error(payload);
    CHECK(error.code == ErrorCode::Corrupt);
    CHECK(error.message == message);
  }
}

TEST_CASE("slot: encode and decode round trip with a little-endian header") {
  const std::string bytes = encode_slot(0x0102030405060708ULL, "payload");
  REQUIRE(bytes.size() == kSlotHeaderSize + 7);
  CHECK(bytes.substr(0, 8) == "BOOTSTAT");
  CHECK(bytes.substr(8, 4) == std::string("\x01\x00\x00\x00", 4));
  CHECK(bytes.substr(12, 8) == "\x08\x07\x06\x05\x04\x03\x02\x01");
  CHECK(bytes.substr(20, 8) == std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8));
  auto slot = decode_slot(bytes);
  REQUIRE(slot.has_value());
  CHECK(slot->format_version == kSlotFormatVersion);
  CHECK(slot->sequence == 0x0102030405060708ULL);
  CHECK(slot->payload == "payload");
  auto empty = decode_slot(encode_slot(1, ""));
  REQUIRE(empty.has_value());
  CHECK(empty->payload.empty());
}

namespace {
// Rewrites the format field and recomputes the checksum, as a newer bootstate would write it.
std::string with_format(std::string bytes, std::uint32_t format) {
  for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<char>(format >> (8 * i));
  const std::uint32_t crc =
      crc32c(std::string_view(bytes).substr(32), crc32c(std::string_view(bytes).substr(0, 28)));
  for (int i = 0; i < 4; ++i) bytes[28 + i] = static_cast<char>(crc >> (8 * i));
  return bytes;
}
}  // namespace

TEST_CASE("slot: damage is Corrupt with a precise reason; a newer format is Unsupported") {
  const std::string good = encode_slot(5, "hello");
  auto message_of = [](std::string_view bytes) {
    auto slot = decode_slot(bytes);
    REQUIRE_FALSE(slot.has_value());
    return slot.error();
  };
  CHECK(message_of("").message == "truncated: 0 bytes, the header alone is 32");
  CHECK(message_of(good.substr(0, 31)).message == "truncated: 31 bytes, the header alone is 32");
  std::string magic = good;
  magic[0] = 'X';
  CHECK(message_of(magic).message == "bad magic: not a bootstate state slot");
  CHECK(message_of(good.substr(0, 35)).message ==
        "length mismatch: the header says 5 payload bytes, the slot holds 3");
  CHECK(message_of(good + "tail").message ==
        "length mismatch: the header says 5 payload bytes, the slot holds 9");
  std::string flipped = good;
  flipped[34] ^= 0x20;
  const Error crc = message_of(flipped);
  CHECK(crc.code == ErrorCode::Corrupt);
  CHECK(crc.message.rfind("checksum mismatch: stored 0x", 0) == 0);

  const Error newer = message_of(with_format(good, 2));
  CHECK(newer.code == ErrorCode::Unsupported);
  CHECK(newer.message == "state format 2 is newer than this bootstate supports (1)");
  auto frame = decode_slot_frame(with_format(good, 2));
  REQUIRE(frame.has_value());
  CHECK(frame->sequence == 5);

  // A damaged version field fails the checksum first: Corrupt, not Unsupported.
  std::string damaged_version = good;
  damaged_version[8] = 2;
  CHECK(message_of(damaged_version).code == ErrorCode::Corrupt);
  CHECK(message_of(with_format(good, 0)).message == "state format 0 was never written");
}

}  // namespace bootstate

namespace bootstate {

// decode_state reads nearly every payload with the fast reader (state_fast_decode.hpp) and leaves
// the rest to the document reader; both must say the same of every payload: the same state, or
// the same error. Each case below either takes the fast path or must leave it.
TEST_CASE("payload: the fast reader and the document reader agree, payload by payload") {
  const std::string full = encode_state(full_state());
  const std::vector<std::string> payloads = {
      full,
      encode_state(State{}),
      // Unknown fields at every level, of every kind, before and after known ones.
      R"({"future":{"a":[1,{"b":null}],"c":"d"},"payload_version":7,"attempt":{"x":[],)"
      R"("number":3,"y":{"z":[[[]]]}},"migrations":[{"q":1.5,"id":"m","steps":[{"w":true,)"
      R"("id":"s","state":"done","v":"\u0000"}],"r":-0}],"last":1e300,"n":NaN})",
      // Fields in reverse order, and missing ones (their defaults).
      R"({"next_attempt_number":9,"last_good_generation":"/g","payload_version":1})",
      // Numbers at the edges of each C++ type, in fields and unknown fields.
      R"({"payload_version":1,"next_attempt_number":18446744073709551615,)"
      R"("attempt":{"number":1,"boots_without_progress":4294967295,"started_usec":-1,)"
      R"("finished_usec":9223372036854775807},"a":-2147483648,"b":-2147483649,"c":4294967296,)"
      R"("d":123456789012345678901234567890,"e":-0.0,"f":1E+0004,"g":0.000001,"h":-Infinity})",
      R"({"payload_version":1,"attempt":{"boots_without_progress":4294967296}})",
      R"({"payload_version":1,"attempt":{"boots_without_progress":-1}})",
      R"({"payload_version":1,"next_attempt_number":-0})",
      R"({"payload_version":1,"next_attempt_number":1.0})",
      R"({"payload_version":1,"next_attempt_number":999999999})",
      R"({"payload_version":1,"next_attempt_number":1000000000})",
      // A known field twice: the document reader's rule (the first) holds.
      R"({"payload_version":1,"next_attempt_number":3,"next_attempt_number":5})",
      R"({"payload_version":1,"migrations":[{"id":"a","id":"b"}]})",
      // Strings with escapes, NULs and bytes that are not UTF-8.
      std::string(R"({"payload_version":1,"last_good_entry":"a\"b\\c\u00e9\ud83d\ude00\u0000d)") +
          "\xff\xfe" + R"("})",
      // Faults: each is the document reader's to name.
      R"({"payload_version":1,"migrations":[{"id":"a","state":"paused"}]})",
      R"({"payload_version":1,"history":[{"state":2}]})",
      R"({"payload_version":1,"attempt":[]})",
      R"({"payload_version":1,"attempt":null})",
      R"({"payload_version":1,"migrations":[[]]})",
      R"({"payload_version":1,"migrations":[3]})",
      R"({"payload_version":1,"migrations":{}})",
      R"({"payload_version":1,"attempt":{"boot_ids":[1]}})",
      R"({"payload_version":1,"attempt":{"boot_ids":"b"}})",
      R"({"payload_version":0})",
      R"({"migrations":[]})",
      R"({"payload_version":1} trailing)",
      R"({"payload_version":1,"x":1e400})",
      R"({"payload_version":1,"x":1e-99999})",
      R"({"payload_version":1,"x":0.)" + std::string(100, '0') + "1e-2147483600}",
      R"({"payload_version":1,"x":)" + std::string(5000, '1') + "}",
      R"({"payload_version":1,"x":)" + std::string(127, '[') + std::string(127, ']') + "}",
      R"({"payload_version":1,"x":)" + std::string(128, '[') + std::string(128, ']') + "}",
      "[1,2]",
      "42",
      "",
      "{",
      // A NUL byte after the JSON text (a string's NUL is written \u0000): both readers read
      // a text up to its first NUL, and only the document reader's limits scan looked past it.
      // The fuzzer found a payload whose bytes after the NUL nested deeper than the limit.
      std::string(R"({"payload_version":1})") + '\0',
      std::string(R"({"payload_version":1})") + '\0' + " trailing",
      std::string(R"({"payload_version":517})") + '\0' + std::string(200, '[') + "1",
      std::string(R"({"payload_version":1,"last_good_entry":"a)") + '\0' + R"("})",
  };
  for (const std::string& payload : payloads) {
    CAPTURE(payload.substr(0, 200));
    auto fast_first = decode_state(payload);
    auto document = decode_state_by_document(payload);
    REQUIRE(fast_first.has_value() == document.has_value());
    if (fast_first) {
      CHECK(encode_state(*fast_first) == encode_state(*document));
    } else {
      CHECK(fast_first.error().code == document.error().code);
      CHECK(fast_first.error().message == document.error().message);
    }
  }
}

}  // namespace bootstate

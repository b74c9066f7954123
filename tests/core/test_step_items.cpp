// Items a running step reports through $BOOTSTATE_ITEMS (core/step_items.hpp): they join the
// attempt's items, and an error item, a garbled report or an unreadable file fails the step.
#include <doctest/doctest.h>

#include "core/choices.hpp"
#include "core/engine.hpp"
#include "core/step_items.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

StepOutcome succeeded_with(std::string reported) {
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message = "exit status 0";
  outcome.reported_items = std::move(reported);
  return outcome;
}

const ItemRecord* item(const State& state, const std::string& id) {
  for (const ItemRecord& record : state.items) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

// Boots a plan whose required migration "m" has one step "a" that ends as `outcome`.
State boot_with(const StepOutcome& outcome, PhaseExit expected) {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  machine.executor.script("m/a", {outcome});
  CHECK(machine.boot().exit == expected);
  return machine.state();
}

}  // namespace

TEST_CASE("a step's warning joins the attempt's items and the step succeeds") {
  State state =
      boot_with(succeeded_with(R"({"id": "disk-low", "severity": "warning", "message": "90% full"})"
                               "\n"),
                PhaseExit::Ok);
  CHECK(state.attempt->state == AttemptState::Complete);
  CHECK(state.find("m")->state == MigrationState::Applied);
  const ItemRecord* reported = item(state, "disk-low");
  REQUIRE(reported != nullptr);
  CHECK(reported->check == "m/a");
  CHECK(reported->severity == "warning");
  CHECK(reported->message == "90% full");
  CHECK(reported->generation == kGen2);
  CHECK(reported->attempt == state.attempt->number);
}

TEST_CASE("a step's error item fails the step, and a required one the attempt") {
  State state =
      boot_with(succeeded_with(
                    R"({"id": "schema-drift", "severity": "error", "message": "table t differs"})"),
                PhaseExit::Failed);
  CHECK(state.attempt->state == AttemptState::Failed);
  const MigrationRecord& m = *state.find("m");
  CHECK(m.state == MigrationState::Failed);
  CHECK_MESSAGE(contains(m.message, "reported error \"schema-drift\": table t differs"), m.message);
  CHECK(item(state, "schema-drift") != nullptr);
}

TEST_CASE("a garbled report fails a step that exited 0, naming the file and the line") {
  State state = boot_with(succeeded_with("{\"id\": \"x\"}\nnot json\n"), PhaseExit::Failed);
  const MigrationRecord& m = *state.find("m");
  CHECK(m.state == MigrationState::Failed);
  CHECK_MESSAGE(contains(m.message, "$BOOTSTATE_ITEMS"), m.message);
  CHECK_MESSAGE(contains(m.message, "line 1"), m.message);
  CHECK(state.items.empty());
}

TEST_CASE("a step's item may not offer resolutions: a step declares none") {
  State state = boot_with(
      succeeded_with(R"({"id": "x", "severity": "warning", "message": "m", "resolutions": ["r"]})"),
      PhaseExit::Failed);
  CHECK_MESSAGE(contains(state.find("m")->message, "\"r\""), state.find("m")->message);
}

TEST_CASE("an unreadable report fails the step; a failed step's items are still recorded") {
  StepOutcome unreadable = succeeded_with("");
  unreadable.reported_items_error = "/w/items: a symbolic link";
  State state = boot_with(unreadable, PhaseExit::Failed);
  CHECK_MESSAGE(contains(state.find("m")->message, "could not be read: /w/items"),
                state.find("m")->message);

  StepOutcome failed = succeeded_with(R"({"id": "why", "severity": "error", "message": "m"})");
  failed.ok = false;
  failed.exit_status = 3;
  failed.message = "exit status 3";
  State after_failure = boot_with(failed, PhaseExit::Failed);
  CHECK(after_failure.find("m")->message == "step \"a\" failed: exit status 3");
  CHECK(item(after_failure, "why") != nullptr);
}

TEST_CASE("a new run of the step replaces what its earlier run reported, not others' items") {
  State state;
  Migration m;
  m.id = "m";
  auto first = step_items(m, "a", false,
                          succeeded_with(R"({"id": "one", "severity": "warning", "message": "1"})"),
                          state, kGen2, 1, 10);
  record_items(state, {first.source}, first.records, kGen2);
  auto other = step_items(m, "b", false,
                          succeeded_with(R"({"id": "two", "severity": "warning", "message": "2"})"),
                          state, kGen2, 1, 11);
  record_items(state, {other.source}, other.records, kGen2);
  REQUIRE(state.items.size() == 2);

  auto again = step_items(m, "a", false, succeeded_with(""), state, kGen2, 2, 12);
  CHECK(again.failure.empty());
  CHECK(record_items(state, {again.source}, again.records, kGen2));
  REQUIRE(state.items.size() == 1);
  CHECK(state.items[0].id == "two");
  CHECK(step_item_source("m", "a", true) == "m/undo/a");
}

TEST_CASE("a report longer than a check's output may be is refused, not truncated") {
  std::string huge(kMaxCheckOutputBytes + 1, ' ');
  Migration m;
  m.id = "m";
  auto items = step_items(m, "a", false, succeeded_with(huge), State{}, kGen2, 1, 1);
  CHECK(contains(items.failure, "more than"));
}

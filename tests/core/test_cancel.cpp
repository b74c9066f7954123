// `bootstate cancel` (docs/DESIGN.md "Cancel", issue 16 item 7) as engine decisions: the
// operator's decision (core/operator.hpp) committed between runs of the phase runner.
#include <doctest/doctest.h>

#include "core/engine.hpp"
#include "core/operator.hpp"
#include "core/store.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

void cancel(TestMachine& machine) {
  auto cancelled = cancel_attempt(machine.state(), machine.now_usec);
  REQUIRE_MESSAGE(cancelled.has_value(), cancelled.error().message);
  StateStore store(machine.slots);
  REQUIRE(store.commit(*cancelled).has_value());
}

// Two undoable post-activation migrations, then initrd work: the attempt waits for a reboot.
std::string waiting_plan() {
  const std::string undo = R"(,"undo":[)" + command_step("revert") + "]";
  return plan_json(
      kGen2, migration("a", command_step("do"), undo) + "," +
                 migration("b", command_step("do"), undo + R"(,"after":["a"])") + "," +
                 migration("early", command_step("e", "initrd-pre-mount"), R"(,"after":["b"])"));
}

TestMachine good_machine() {
  TestMachine machine(FakeBootLoader::counting("entry-1", 3, 0));
  machine.boot_plan(plan_json(kGen1, ""));
  REQUIRE(machine.boot().exit == PhaseExit::Ok);
  return machine;
}

}  // namespace

TEST_CASE("cancel: a live switch's applied migrations are undone at once, newest first") {
  TestMachine machine = good_machine();
  machine.booted = kGen1;
  machine.boot_plan(waiting_plan());
  REQUIRE(machine.run(Phase::PostActivation).exit == PhaseExit::RebootRequired);
  REQUIRE(machine.executor.calls() == std::vector<std::string>{"run:a/do", "run:b/do"});
  cancel(machine);
  auto end = machine.run(Phase::PostActivation);
  CHECK_MESSAGE(end.exit == PhaseExit::Ok, end.message);
  CHECK_FALSE(end.reboot);
  CHECK(machine.executor.calls() ==
        std::vector<std::string>{"run:a/do", "run:b/do", "run:b/revert", "run:a/revert"});
  State state = machine.state();
  CHECK(state.find("a")->state == MigrationState::Undone);
  CHECK(state.find("b")->state == MigrationState::Undone);
  CHECK(state.attempt->state == AttemptState::Abandoned);
  CHECK(state.attempt->reason == "cancelled by the operator");
  // The unit restarted on the same generation: the undone work does not start over.
  CHECK(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  CHECK(machine.executor.calls().size() == 4);
}

TEST_CASE("cancel: the cancelled generation booted again runs nothing and falls back") {
  TestMachine machine = good_machine();
  machine.loader = FakeBootLoader::counting("entry-2", 2, 1);
  machine.boot_plan(waiting_plan());
  machine.reboot();
  REQUIRE(machine.boot().exit == PhaseExit::RebootRequired);
  cancel(machine);
  machine.reboot();
  auto end = machine.run(Phase::InitrdPreMount);
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_MESSAGE(end.message.find("cancelled by the operator") != std::string::npos, end.message);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:a/do", "run:b/do"});
  CHECK(machine.loader.calls().back() == "mark_bad");

  // The last good generation boots: its boot undoes them (stale), newest first.
  machine.loader = FakeBootLoader::counting("entry-1", 3, 0);
  machine.boot_plan(plan_json(kGen1, ""));
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() ==
        std::vector<std::string>{"run:a/do", "run:b/do", "run:b/revert", "run:a/revert"});
  CHECK(machine.state().history.back().reason == "cancelled by the operator");
}

TEST_CASE("cancel: only an attempt in progress; twice is the same answer") {
  TestMachine machine = good_machine();
  auto refused = cancel_attempt(machine.state(), machine.now_usec);  // complete
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == ErrorCode::InvalidInput);
  CHECK(refused.error().message.find("only an attempt in progress can be cancelled") !=
        std::string::npos);
  CHECK_FALSE(cancel_attempt(State{}, 0).has_value());  // no attempt at all

  machine.boot_plan(waiting_plan());
  machine.reboot();
  REQUIRE(machine.boot().exit == PhaseExit::RebootRequired);
  cancel(machine);
  auto again = cancel_attempt(machine.state(), machine.now_usec + 1);
  REQUIRE(again.has_value());
  CHECK(again->attempt->finished_usec == machine.state().attempt->finished_usec);
}

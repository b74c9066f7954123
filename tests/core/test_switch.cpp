// A live switch (docs/DESIGN.md "A live switch", issue 14 item 1) as engine decisions through
// the phase runner: /run/current-system names the plan's generation while init= still names
// the booted one (TestMachine::booted).
#include <doctest/doctest.h>

#include "core/engine.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Generation 1 booted and good (its entry blessed); then `nixos-rebuild switch` to `plan`.
TestMachine switched_machine(const std::string& plan) {
  TestMachine machine(FakeBootLoader::counting("entry-1", 3, 0));
  machine.boot_plan(plan_json(kGen1, ""));
  REQUIRE(machine.boot().exit == PhaseExit::Ok);
  REQUIRE(machine.state().last_good_generation == kGen1);
  machine.booted = kGen1;
  machine.boot_plan(plan);
  return machine;
}

std::size_t loader_calls(TestMachine& machine) {
  return machine.loader.calls().size();
}

}  // namespace

TEST_CASE("switch: post-activation work runs, nothing is counted, nothing reboots") {
  TestMachine machine = switched_machine(plan_json(kGen2, migration("m", command_step("a"))));
  const std::size_t calls = loader_calls(machine);
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  CHECK_FALSE(end.reboot);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
  CHECK(loader_calls(machine) == calls);  // no mark_bad, rearm, mark_good or one-shot
  State state = machine.state();
  CHECK(state.attempt->generation == kGen2);
  CHECK(state.attempt->state == AttemptState::Complete);
  CHECK(state.attempt->entry.empty());     // the booted entry boots generation 1
  CHECK(state.attempt->boot_ids.empty());  // a switch is no boot of generation 2
  CHECK(state.last_good_generation == kGen1);
}

TEST_CASE("switch: the first boot of the switched generation makes it the last good one") {
  TestMachine machine = switched_machine(plan_json(kGen2, migration("m", command_step("a"))));
  REQUIRE(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  machine.booted.clear();
  machine.loader = FakeBootLoader::counting("entry-2", 2, 1);
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});  // not again
  State state = machine.state();
  CHECK(state.last_good_generation == kGen2);
  CHECK(state.last_good_entry == "entry-2");
  CHECK(machine.loader.calls() == std::vector<std::string>{"mark_good"});
}

TEST_CASE("switch: initrd work pending exits RebootRequired and the runner does not reboot") {
  TestMachine machine =
      switched_machine(plan_json(kGen2, migration("early", command_step("e", "initrd-pre-mount")) +
                                            "," + migration("late", command_step("l"))));
  const std::size_t calls = loader_calls(machine);
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::RebootRequired);
  CHECK_FALSE(end.reboot);
  CHECK(contains(end.message, "never reboots during a switch"));
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:late/l"});
  CHECK(loader_calls(machine) == calls);
  CHECK(machine.state().attempt->state == AttemptState::InProgress);

  // The operator reboots into it: the same attempt goes on as a boot and completes.
  machine.booted.clear();
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:late/l", "run:early/e"});
  State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Complete);
  CHECK(state.attempt->entry == "entry-1");  // the fake boots its one entry
  CHECK(state.last_good_generation == kGen2);
}

TEST_CASE("boot: initrd work pending after post-activation still asks for the reboot") {
  // The contrast to the switch: a boot whose reboot continues the work reboots.
  TestMachine machine;
  machine.boot_plan(plan_json(
      kGen2, migration("m", command_step("a") + "," + command_step("b", "initrd-pre-mount"))));
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::RebootRequired);
  CHECK(end.reboot);
}

TEST_CASE("switch: a failed required step undoes its migration (backup), exits Failed, no reboot") {
  TestMachine machine = switched_machine(
      plan_json(kGen2, migration("db", command_step("convert") + "," + command_step("verify"),
                                 R"(,"backup":["/var/lib/db"])")));
  machine.executor.fail("db/verify", "exit status 3");
  const std::size_t calls = loader_calls(machine);
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_FALSE(end.reboot);
  CHECK_FALSE(end.fallback_arranged);
  CHECK(loader_calls(machine) == calls);
  CHECK_MESSAGE(contains(end.message, "nixos-rebuild switch --rollback"), end.message);
  CHECK_MESSAGE(contains(end.message, "migration \"db\" was undone"), end.message);
  CHECK(machine.backups.calls() == std::vector<std::string>{"snapshot:db", "restore:db"});
  State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Failed);
  CHECK(state.find("db")->state == MigrationState::Undone);
  CHECK(state.last_good_generation == kGen1);

  // The unit restarted in the same boot: still failed, nothing runs or is restored again.
  auto again = machine.run(Phase::PostActivation);
  CHECK(again.exit == PhaseExit::Failed);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:db/convert", "run:db/verify"});
  CHECK(machine.backups.calls().size() == 2);
  CHECK(machine.state().find("db")->state == MigrationState::Undone);
}

TEST_CASE("switch: a failed migration with undo steps runs them") {
  TestMachine machine = switched_machine(
      plan_json(kGen2, migration("svc", command_step("do") + "," + command_step("boom"),
                                 R"(,"undo":[)" + command_step("revert") + "]")));
  machine.executor.fail("svc/boom", "exit status 2");
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(machine.executor.calls() ==
        std::vector<std::string>{"run:svc/do", "run:svc/boom", "run:svc/revert"});
  CHECK(machine.state().find("svc")->state == MigrationState::Undone);
}

TEST_CASE("switch: a failed migration that cannot be undone says so, still without a reboot") {
  TestMachine machine = switched_machine(plan_json(kGen2, migration("bare", command_step("boom"))));
  machine.executor.fail("bare/boom", "exit status 1");
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_FALSE(end.reboot);
  CHECK_MESSAGE(contains(end.message, "migration \"bare\" cannot be undone"), end.message);
  CHECK(machine.state().find("bare")->state == MigrationState::Failed);
}

TEST_CASE("switch back to the booted generation undoes what the switch applied") {
  TestMachine machine = switched_machine(
      plan_json(kGen2, migration("db", command_step("convert"), R"(,"backup":["/var/lib/db"])")));
  REQUIRE(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  // nixos-rebuild switch --rollback: /run/current-system names the booted generation again.
  machine.booted.clear();
  machine.boot_plan(plan_json(kGen1, ""));
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  CHECK_FALSE(end.reboot);
  CHECK(machine.backups.calls() == std::vector<std::string>{"snapshot:db", "restore:db"});
  State state = machine.state();
  CHECK(state.find("db")->state == MigrationState::Undone);
  CHECK(state.attempt->generation == kGen1);
  CHECK(state.attempt->state == AttemptState::Complete);
  CHECK(state.last_good_generation == kGen1);
}

TEST_CASE("switch: a plan without migrations does nothing and commits nothing") {
  TestMachine machine = switched_machine(plan_json(kGen2, ""));
  const int writes = machine.slots.writes();
  const std::size_t calls = loader_calls(machine);
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  CHECK_FALSE(end.wrote);
  CHECK(machine.slots.writes() == writes);
  CHECK(loader_calls(machine) == calls);
  CHECK(machine.state().attempt->generation == kGen1);  // the booted one's, untouched
}

TEST_CASE("switch: a plan whose work is already in effect does nothing either") {
  TestMachine machine = switched_machine(plan_json(kGen2, migration("m", command_step("a"))));
  REQUIRE(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  const int writes = machine.slots.writes();
  auto again = machine.run(Phase::PostActivation);  // the unit restarted
  CHECK(again.exit == PhaseExit::Ok);
  CHECK(machine.slots.writes() == writes);
  CHECK(machine.executor.calls().size() == 1);
}

TEST_CASE("switch: a migration of the booted generation that the new plan drops is undone") {
  TestMachine machine(FakeBootLoader::counting("entry-1", 3, 0));
  machine.boot_plan(
      plan_json(kGen1, migration("old", command_step("a"), R"(,"backup":["/var/lib/x"])")));
  REQUIRE(machine.boot().exit == PhaseExit::Ok);
  machine.booted = kGen1;
  machine.boot_plan(plan_json(kGen2, ""));
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  CHECK(machine.backups.calls() == std::vector<std::string>{"snapshot:old", "restore:old"});
  CHECK(machine.state().find("old")->state == MigrationState::Undone);
  CHECK(machine.state().attempt->generation == kGen2);
}

TEST_CASE("switch back while the switch waits for a reboot abandons it, saying so") {
  TestMachine machine = switched_machine(plan_json(
      kGen2, migration("early", command_step("e", "initrd-pre-mount")) + "," +
                 migration("db", command_step("convert"), R"(,"backup":["/var/lib/db"])")));
  REQUIRE(machine.run(Phase::PostActivation).exit == PhaseExit::RebootRequired);
  // /run/current-system names the booted generation again (booted stays set: stage 2).
  machine.boot_plan(plan_json(kGen1, ""));
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  State state = machine.state();
  REQUIRE_FALSE(state.history.empty());
  CHECK(state.history.back().state == AttemptState::Abandoned);
  CHECK(state.history.back().reason == "switched back to generation " + kGen1);
  CHECK(state.find("db")->state == MigrationState::Undone);
  CHECK(machine.backups.calls() == std::vector<std::string>{"snapshot:db", "restore:db"});
}

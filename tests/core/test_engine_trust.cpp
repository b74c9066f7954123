// Issue #13: the trust holes a skeptical reviewer found in the engine, each as the case that
// failed before its fix (items 2, 3, 4, 5, 7), driven through the phase runner with strict fakes.
#include <doctest/doctest.h>

#include "core/engine.hpp"
#include "core/operator.hpp"
#include "core/preview.hpp"
#include "core/state_codec.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

std::string storage_step(const std::string& id, const std::string& name) {
  return R"({"id":")" + id +
         R"(","phase":"initrd-pre-mount","kind":"storage","operations":[{"op":"add-partition",)"
         R"("disk":"/dev/vdb","name":")" +
         name + R"(","type":"linux","size":"8M"}]})";
}

const MigrationRecord& record(const State& state, const std::string& id) {
  const MigrationRecord* found = state.find(id);
  REQUIRE_MESSAGE(found != nullptr, "no record of " << id);
  return *found;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void establish_last_good(TestMachine& machine) {
  FakeBootLoader next = machine.loader;
  machine.loader = FakeBootLoader::counting_off("entry-1");
  machine.boot_plan(plan_json(kGen1, ""));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  REQUIRE(machine.state().last_good_generation == kGen1);
  machine.loader = next;
  machine.loader.add_entry(kGen1, "entry-1");
  machine.reboot();
}

StepOutcome succeeded_with_undo(std::string undo_record) {
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message = "done";
  outcome.undo_record = std::move(undo_record);
  return outcome;
}

}  // namespace

TEST_CASE("item 2: a revert is given the forward step's record, with its undo record") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(
      kGen2, migration("layout", storage_step("add", "extra") + "," + storage_step("two", "x"))));
  machine.executor.script("layout/add", {succeeded_with_undo(R"({"added":"extra"})")});
  machine.executor.script("layout/two", {succeeded_with_undo(R"({"added":"x"})")});
  CHECK(machine.boot().exit == PhaseExit::Ok);
  machine.reboot();
  machine.boot_plan(plan_json(kGen1, ""));
  machine.executor.records_seen.clear();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:layout/add", "run:layout/two",
                                                             "revert:layout/two",
                                                             "revert:layout/add"});
  REQUIRE(machine.executor.records_seen.size() == 2);
  CHECK(machine.executor.records_seen[0].undo_record == R"({"added":"x"})");
  CHECK(machine.executor.records_seen[1].undo_record == R"({"added":"extra"})");
  CHECK(record(machine.state(), "layout").state == MigrationState::Undone);
}

TEST_CASE("item 3: a required migration after a failed recommended one fails the attempt") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(kGen2, migration("a", command_step("x"), "", "recommended") + "," +
                                         migration("b", command_step("y"), R"(,"after":["a"])")));
  machine.executor.fail("a/x", "exit status 3");
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_MESSAGE((contains(end.message, "required migration \"b\" cannot run") &&
                 contains(end.message, "\"a\"")),
                end.message);
  CHECK(end.fallback_arranged);
  CHECK(machine.loader.calls().back() == "mark_bad");
  State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Failed);
  CHECK(state.last_good_generation == kGen1);  // not blessed, not last good
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:a/x"});
}

TEST_CASE("item 3: through a chain, the reason names the required one and the root cause") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(
      plan_json(kGen2, migration("a", command_step("x"), "", "recommended") + "," +
                           migration("mid", command_step("m"), R"(,"after":["a"])", "recommended") +
                           "," + migration("b", command_step("y"), R"(,"after":["mid"])")));
  machine.executor.fail("a/x", "exit status 3");
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_MESSAGE((contains(end.message, "\"b\"") && contains(end.message, "\"a\"") &&
                 contains(end.message, "failed")),
                end.message);
}

TEST_CASE(
    "item 3: a declined recommended migration that a required one follows fails the attempt") {
  TestMachine machine;
  establish_last_good(machine);
  // Declined while the plan had nothing that depended on it (decline is refused otherwise).
  machine.boot_plan(plan_json(kGen2, migration("a", command_step("x"), "", "recommended")));
  auto declined = decline_migration(State{}, machine.plan(), "a");
  REQUIRE(declined.has_value());
  State state = machine.state();
  state.migrations.push_back(declined->migrations.front());
  REQUIRE(StateStore(machine.slots).commit(state));
  machine.boot_plan(plan_json(kGen2, migration("a", command_step("x"), "", "recommended") + "," +
                                         migration("b", command_step("y"), R"(,"after":["a"])")));
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_MESSAGE((contains(end.message, "\"b\"") && contains(end.message, "declined")), end.message);
  CHECK(machine.state().attempt->state == AttemptState::Failed);
  CHECK(machine.executor.calls().empty());
}

TEST_CASE("item 3: decline refuses a migration that a required one depends on") {
  Plan plan = must_parse(
      plan_json(kGen2, migration("a", command_step("x"), "", "recommended") + "," +
                           migration("mid", command_step("m"), R"(,"after":["a"])", "optional") +
                           "," + migration("b", command_step("y"), R"(,"after":["mid"])") + "," +
                           migration("free", command_step("f"), "", "recommended")));
  auto direct = decline_migration(State{}, plan, "mid");
  REQUIRE(!direct);
  CHECK(direct.error().code == ErrorCode::InvalidInput);
  CHECK_MESSAGE(contains(direct.error().message, "required migration \"b\""),
                direct.error().message);
  auto transitive = decline_migration(State{}, plan, "a");
  REQUIRE(!transitive);
  CHECK_MESSAGE((contains(transitive.error().message, "required migration \"b\"") &&
                 contains(transitive.error().message, "\"mid\"")),
                transitive.error().message);
  CHECK(decline_migration(State{}, plan, "free").has_value());
}

TEST_CASE("item 4: a changed definition of an applied migration blocks: preview, status, boot") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"), "", "recommended")));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.state().last_good_generation == kGen2);
  machine.loader.add_entry(kGen2, "entry-2");
  machine.reboot();
  const std::string gen3 = plan_json(
      kGen3, migration("m", command_step("a") + "," + command_step("extra"), "", "recommended"));
  Plan plan3 = must_parse(gen3);

  // preview: a blocker naming it.
  PreviewReport report = preview_plan(machine.state(), plan3, {}, "/");
  REQUIRE(!report.blockers.empty());
  CHECK_MESSAGE((contains(report.blockers.front(), "\"m\"") &&
                 contains(report.blockers.front(), "definition changed")),
                report.blockers.front());

  // status: blocked, saying why.
  auto views = plan_view(plan3, machine.state());
  CHECK(views[0].readiness == Readiness::Blocked);
  CHECK(views[0].definition_changed);

  // boot: the phase fails, the attempt is not complete, the new step never runs silently.
  machine.boot_plan(gen3);
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK_MESSAGE((contains(end.message, "\"m\"") && contains(end.message, "definition changed")),
                end.message);
  State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Failed);
  CHECK(state.last_good_generation == kGen2);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
}

TEST_CASE("item 5: after the store was lost, a step that cannot tell whether it ran is held") {
  TestMachine machine;
  machine.boot_plan(plan_json(
      kGen2, migration("m", command_step("a")) + "," +
                 migration("safe", command_step("i", "post-activation", R"(,"idempotent":true)"))));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.applied("m/a") == 1);
  // Both slots are lost: their bytes are garbage, the store moves them aside.
  machine.slots.slot(0) = std::string(64, 'x');
  machine.slots.slot(1) = std::string(64, 'y');
  machine.reboot();
  auto end = machine.boot();
  CHECK(machine.slots.move_asides() == 1);
  CHECK(end.exit == PhaseExit::Failed);  // required work is held: not blessed
  CHECK_FALSE(end.fallback_arranged);    // nothing is wrong with the generation
  CHECK_MESSAGE((contains(end.message, "\"m\"") && contains(end.message, "bootstate accept m")),
                end.message);
  CHECK(machine.executor.applied("m/a") == 1);  // not run again
  CHECK(machine.executor.applied("safe/i") == 2);
  State state = machine.state();
  CHECK(state.store_reset_usec != 0);
  auto views = plan_view(machine.plan(), state);
  CHECK(views[0].readiness == Readiness::Held);
  CHECK(state.attempt->state == AttemptState::InProgress);

  // Another boot does not forget it.
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Failed);
  CHECK(machine.executor.applied("m/a") == 1);

  // The operator's word releases it.
  auto accepted = accept_migration(machine.state(), machine.plan(), "m");
  REQUIRE_MESSAGE(accepted.has_value(), (accepted ? "" : accepted.error().message));
  REQUIRE(StateStore(machine.slots).commit(*accepted));
  CHECK(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  CHECK(machine.executor.applied("m/a") == 2);
  CHECK(machine.state().attempt->state == AttemptState::Complete);
}

TEST_CASE("item 5: accept of a required migration is still refused when nothing holds it") {
  Plan plan = must_parse(plan_json(kGen2, migration("m", command_step("a"))));
  auto refused = accept_migration(State{}, plan, "m");
  REQUIRE(!refused);
  CHECK(refused.error().code == ErrorCode::InvalidInput);
}

TEST_CASE("item 7: a fallback that could not be arranged does not ask for a reboot") {
  SUBCASE("mark_bad fails") {
    TestMachine machine;
    establish_last_good(machine);
    machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
    machine.executor.fail("m/a", "exit status 3");
    machine.loader.fail_next("mark_bad", Error{ErrorCode::Io, "rename: Read-only file system"});
    auto end = machine.boot();
    CHECK(end.exit == PhaseExit::Failed);
    CHECK_FALSE(end.fallback_arranged);
    CHECK_MESSAGE((contains(end.message, "could not be arranged") &&
                   contains(end.message, "Read-only file system")),
                  end.message);
  }
  SUBCASE("set_one_shot fails") {
    TestMachine machine(FakeBootLoader::counting_off("entry-2"));
    establish_last_good(machine);
    machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
    machine.executor.fail("m/a", "exit status 3");
    machine.loader.fail_next("set_one_shot", Error{ErrorCode::Io, "efivarfs: Permission denied"});
    auto end = machine.boot();
    CHECK(end.exit == PhaseExit::Failed);
    CHECK_FALSE(end.fallback_arranged);
    CHECK(contains(end.message, "Permission denied"));
  }
  SUBCASE("it succeeds: a reboot is worth it") {
    TestMachine machine;
    establish_last_good(machine);
    machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
    machine.executor.fail("m/a", "exit status 3");
    auto end = machine.boot();
    CHECK(end.fallback_arranged);
  }
}

TEST_CASE("item 5: the store-lost mark survives the codec and is left out when unset") {
  State lost;
  lost.store_reset_usec = 1'700'000'000'000'000;
  auto decoded = decode_state(encode_state(lost));
  REQUIRE(decoded.has_value());
  CHECK(decoded->store_reset_usec == lost.store_reset_usec);
  // Unset, the payload is what older writers wrote (and what older readers expect).
  CHECK(!contains(encode_state(State{}), "store_reset_usec"));
}

TEST_CASE(
    "item 5: a power cut between moving the store aside and the first commit forgets nothing") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  machine.slots.slot(0) = std::string(64, 'x');
  machine.slots.slot(1) = std::string(64, 'y');
  machine.reboot();
  // The run moves the slots aside, then the power goes before its first commit is durable.
  machine.slots.fail_write(machine.slots.writes() + 1);
  CHECK(!machine.try_run(Phase::InitrdPreMount).has_value());
  CHECK(!machine.slots.slot(0).has_value());
  CHECK(!machine.slots.slot(1).has_value());
  machine.reboot();
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(machine.executor.applied("m/a") == 1);
  CHECK(machine.state().store_reset_usec != 0);
}

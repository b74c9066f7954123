// Semantics 1–7 of docs/DESIGN.md as engine decisions, driven through the phase runner with
// strict fakes. Each test case names the rule it checks.
#include <doctest/doctest.h>

#include "core/engine.hpp"
#include "core/transitions.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

const MigrationRecord& record(const State& state, const std::string& id) {
  const MigrationRecord* found = state.find(id);
  REQUIRE_MESSAGE(found != nullptr, "no record of " << id);
  return *found;
}

// Boots generation 1 with an empty plan to completion: it becomes the last good generation.
// The boot loader then boots the machine's own entry ("entry-2") again.
void establish_last_good(TestMachine& machine) {
  FakeBootLoader next = machine.loader;
  machine.loader = FakeBootLoader::counting_off("entry-1");
  machine.boot_plan(plan_json(kGen1, ""));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  REQUIRE(machine.state().last_good_generation == kGen1);
  REQUIRE(machine.state().last_good_entry == "entry-1");
  machine.loader = next;
  machine.loader.add_entry(kGen1, "entry-1");
  machine.reboot();
}

}  // namespace

TEST_CASE("transition table: every listed pair moves, an unlisted one is a bug") {
  CHECK(*next_state(StepState::Pending, StepEvent::Start) == StepState::Running);
  CHECK(*next_state(StepState::Running, StepEvent::Succeed) == StepState::Done);
  CHECK(*next_state(MigrationState::Applied, MigrationEvent::Undo) == MigrationState::Running);
  CHECK(*next_state(AttemptState::InProgress, AttemptEvent::Abandon) == AttemptState::Abandoned);
  auto impossible = next_state(StepState::Done, StepEvent::Start);
  REQUIRE(!impossible);
  CHECK(impossible.error().message == "bug: a step cannot go from done on start");
  CHECK(!next_state(AttemptState::Abandoned, AttemptEvent::Complete));
}

TEST_CASE("semantics 2: steps run in their phase, in order, across the phases of one boot") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a", "pre-switch-root") + "," +
                                                        command_step("b", "post-activation"))));
  CHECK(machine.run(Phase::InitrdPreMount).exit == PhaseExit::Ok);
  CHECK(machine.executor.calls().empty());
  CHECK(machine.run(Phase::PreSwitchRoot).exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
  auto end = machine.run(Phase::PostActivation);
  CHECK(end.exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a", "run:m/b"});
  State state = machine.state();
  CHECK(record(state, "m").state == MigrationState::Applied);
  CHECK(state.attempt->state == AttemptState::Complete);
  CHECK(state.last_good_generation == kGen2);
  // Semantics 7 + 6: the completing boot blesses its entry itself.
  // The step in pre-switch-root was progress with work left: its boot got its tries back.
  CHECK(machine.loader.calls() == std::vector<std::string>{"rearm", "mark_good"});
}

TEST_CASE("semantics 2: a step whose phase already passed waits for the next boot") {
  TestMachine machine;
  machine.boot_plan(plan_json(
      kGen2, migration("m", command_step("a") + "," + command_step("b", "initrd-pre-mount"))));
  auto first = machine.boot();
  CHECK(first.exit == PhaseExit::RebootRequired);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
  // Progress re-arms the counter so a multi-boot migration does not use up its tries.
  CHECK(machine.loader.calls() == std::vector<std::string>{"rearm"});
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a", "run:m/b"});
  CHECK(machine.state().attempt->state == AttemptState::Complete);
}

TEST_CASE("a three-step migration with a reboot in the middle completes in two boots") {
  TestMachine machine;
  machine.boot_plan(plan_json(
      kGen2, migration("m", command_step("one") + "," +
                                command_step("two", "post-activation", R"(,"reboot":true)") + "," +
                                command_step("three"))));
  CHECK(machine.boot().exit == PhaseExit::RebootRequired);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/one", "run:m/two"});
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls().back() == "run:m/three");
  State state = machine.state();
  CHECK(record(state, "m").state == MigrationState::Applied);
  CHECK(state.attempt->boot_ids.size() == 2);
  CHECK(machine.loader.calls() == std::vector<std::string>{"rearm", "mark_good"});
}

TEST_CASE("semantics 3 and 4: a failed required step fails the phase and marks the entry bad") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a") + "," + command_step("b"))));
  machine.executor.fail("m/a", "exit status 3");
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(end.message.find("required migration \"m\": step \"a\" failed: exit status 3") !=
        std::string::npos);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
  State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Failed);
  CHECK(record(state, "m").state == MigrationState::Failed);
  const StepRecord& step = record(state, "m").steps.at(0);
  CHECK(step.state == StepState::Failed);
  CHECK(step.exit_status == 1);
  CHECK(step.attempts == 1);
  CHECK(step.boot_id == machine.boot_id());
  CHECK(machine.loader.calls().back() == "mark_bad");
  CHECK(end.fallback_arranged);  // the CLI asks for a reboot
  CHECK(state.last_good_generation == kGen1);
}

TEST_CASE("semantics 4: without boot counting a failure sets the one-shot to the last good entry") {
  TestMachine machine(FakeBootLoader::counting_off("entry-2"));
  establish_last_good(machine);
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  machine.executor.fail("m/a", "boom");
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(end.fallback_arranged);
  CHECK(machine.loader.calls() == std::vector<std::string>{"set_one_shot:entry-1"});
}

TEST_CASE("recommended and optional failures are recorded and the boot goes on") {
  TestMachine machine;
  machine.boot_plan(plan_json(
      kGen2, migration("rec", command_step("a"), "", "recommended") + "," +
                 migration("after-rec", command_step("b"), R"(,"after":["rec"])", "recommended") +
                 "," + migration("other", command_step("c"))));
  machine.executor.fail("rec/a", "nope");
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Ok);
  State state = machine.state();
  CHECK(record(state, "rec").state == MigrationState::Failed);
  CHECK(record(state, "other").state == MigrationState::Applied);
  CHECK(state.find("after-rec") == nullptr);  // blocked: it follows a failed migration
  auto views = plan_view(machine.plan(), state);
  CHECK(views[1].readiness == Readiness::Blocked);
  CHECK(views[1].detail == "follows \"rec\", which is failed");
  CHECK(state.attempt->state == AttemptState::Complete);
}

TEST_CASE("an optional migration waits for accept; a declined recommended one is skipped") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("opt", command_step("a"), "", "optional") + "," +
                                         migration("rec", command_step("b"), "", "recommended")));
  State declined;
  MigrationRecord decision;
  decision.id = "rec";
  decision.policy = Policy::Recommended;
  decision.decision = OperatorDecision::Declined;
  decision.state = MigrationState::Declined;
  declined.migrations.push_back(decision);
  StateStore store(machine.slots);
  REQUIRE(store.commit(declined));

  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls().empty());
  auto views = plan_view(machine.plan(), machine.state());
  CHECK(views[0].readiness == Readiness::NeedsAccept);
  CHECK(views[1].readiness == Readiness::Declined);

  State accepted = machine.state();
  MigrationRecord opt;
  opt.id = "opt";
  opt.policy = Policy::Optional;
  opt.decision = OperatorDecision::Accepted;
  accepted.migrations.push_back(opt);
  REQUIRE(StateStore(machine.slots).commit(accepted));
  // post-activation re-runs (switch-to-configuration, or the operator) and picks it up.
  CHECK(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:opt/a"});
  CHECK(machine.state().attempt->state == AttemptState::Complete);
}

TEST_CASE("semantics 3: a step interrupted by a power cut resumes by the resume table") {
  TestMachine machine;
  auto interrupt = [&](const std::string& extra) {
    machine.boot_plan(
        plan_json(kGen2, migration("m", command_step("a", "post-activation", extra))));
    // Commits: 1 reconcile, 2 running, 3 done. The power goes before "done" is durable.
    machine.slots.fail_write(3);
    CHECK(!machine.try_run(Phase::PostActivation).has_value());
    CHECK(record(machine.state(), "m").steps.at(0).state == StepState::Running);
    machine.reboot();
  };

  SUBCASE("idempotent: it runs again") {
    interrupt(R"(,"idempotent":true)");
    CHECK(machine.boot().exit == PhaseExit::Ok);
    CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a", "run:m/a"});
    CHECK(record(machine.state(), "m").steps.at(0).attempts == 2);
  }
  SUBCASE("with a check that says applied: done without running it again") {
    interrupt(R"(,"check":["/bin/true"])");
    CHECK(machine.boot().exit == PhaseExit::Ok);
    CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a", "check:m/a"});
    CHECK(machine.executor.applied("m/a") == 1);
    CHECK(record(machine.state(), "m").state == MigrationState::Applied);
  }
  SUBCASE("with a check that says not applied: it runs again") {
    interrupt(R"(,"check":["/bin/true"])");
    machine.executor.check_answer("m/a", CheckResult::NotApplied);
    CHECK(machine.boot().exit == PhaseExit::Ok);
    CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a", "check:m/a", "run:m/a"});
  }
  SUBCASE("neither: it fails as interrupted, not idempotent") {
    interrupt("");
    auto end = machine.boot();
    CHECK(end.exit == PhaseExit::Failed);
    State state = machine.state();
    const StepRecord& step = record(state, "m").steps.at(0);
    CHECK(step.state == StepState::Failed);
    CHECK_MESSAGE(
        step.message.find("interrupted in boot boot-1 and not idempotent") != std::string::npos,
        step.message);
    CHECK(machine.executor.calls() == std::vector<std::string>{"run:m/a"});
  }
}

TEST_CASE("semantics 1: a stale migration is undone from its backup on fallback") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(
      plan_json(kGen2, migration("db", command_step("a"), R"(,"backup":["/var/lib/db"])")));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.backups.calls() == std::vector<std::string>{"snapshot:db"});
  CHECK(record(machine.state(), "db").backup_taken);

  SUBCASE("restored with root mounted") {
    machine.reboot();
    machine.boot_plan(plan_json(kGen1, ""));
    CHECK(machine.run(Phase::InitrdPreMount).exit == PhaseExit::Ok);
    CHECK(machine.run(Phase::PreSwitchRoot).exit == PhaseExit::Ok);
    CHECK(machine.backups.calls().back() == "restore:db");
    CHECK(machine.run(Phase::PostActivation).exit == PhaseExit::Ok);
    State state = machine.state();
    CHECK(record(state, "db").state == MigrationState::Undone);
    CHECK(state.last_good_generation == kGen1);
    CHECK(state.history.back().generation == kGen2);
  }
  SUBCASE("a backup that cannot be restored fails the undo under its pseudo-step, saying why") {
    REQUIRE(machine.backups.discard("db"));  // the snapshot is gone (deleted by hand, disk lost)
    machine.reboot();
    machine.boot_plan(plan_json(kGen1, ""));
    CHECK(machine.run(Phase::InitrdPreMount).exit == PhaseExit::Ok);
    auto end = machine.run(Phase::PreSwitchRoot);
    INFO(end.message);
    CHECK(end.exit == PhaseExit::Failed);
    CHECK(end.message.find("no snapshot of db") != std::string::npos);
    CHECK(machine.backups.calls().back() == "restore:db");
    const State state = machine.state();
    const MigrationRecord& db = record(state, "db");
    CHECK(db.state != MigrationState::Undone);
    REQUIRE(db.undo_steps.size() == 1);
    CHECK(db.undo_steps[0].id == "restore-backup");
    CHECK(db.undo_steps[0].state == StepState::Failed);
    CHECK(db.undo_steps[0].message.find("restoring the backup failed: no snapshot of db") !=
          std::string::npos);
  }
}

TEST_CASE("semantics 1: explicit undo steps run in their phases; keep is kept; neither blocks") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(
      kGen2,
      migration(
          "with-undo", command_step("a"),
          R"(,"undo":[{"id":"u","phase":"post-activation","kind":"command","command":["/bin/true"]}])") +
          "," + migration("kept", command_step("k"), R"(,"keep":true)")));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  machine.reboot();
  machine.boot_plan(plan_json(kGen1, ""));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls().back() == "run:with-undo/u");
  State state = machine.state();
  CHECK(record(state, "with-undo").state == MigrationState::Undone);
  CHECK(record(state, "kept").state == MigrationState::Applied);

  SUBCASE("a stale migration with neither undo nor backup blocks, naming it") {
    machine.reboot();
    machine.boot_plan(plan_json(kGen3, migration("bare", command_step("x"))));
    CHECK(machine.boot().exit == PhaseExit::Ok);
    machine.reboot();
    machine.boot_plan(plan_json(kGen1, ""));
    auto end = machine.boot();
    CHECK(end.exit == PhaseExit::Failed);
    CHECK(end.message.find("stale migration \"bare\" cannot be undone: step \"x\" ran") !=
          std::string::npos);
    // Nothing to fall back to: the CLI must not reboot into the same failure again and again.
    CHECK_FALSE(end.fallback_arranged);
  }
}

TEST_CASE("semantics 5: booting another generation abandons the incomplete attempt and undoes it") {
  TestMachine machine;
  establish_last_good(machine);
  machine.boot_plan(plan_json(
      kGen2, migration("m", command_step("a") + "," + command_step("b", "initrd-pre-mount"),
                       R"(,"backup":["/etc/x"])")));
  CHECK(machine.boot().exit == PhaseExit::RebootRequired);
  machine.reboot();
  machine.boot_plan(plan_json(kGen1, ""));  // e.g. the counter ran out
  CHECK(machine.boot().exit == PhaseExit::Ok);
  State state = machine.state();
  REQUIRE(!state.history.empty());
  const Attempt& abandoned = state.history.back();
  CHECK(abandoned.state == AttemptState::Abandoned);
  CHECK(abandoned.reason == "fell back to the last good generation " + kGen1);
  CHECK(record(state, "m").state == MigrationState::Undone);
  CHECK(machine.backups.calls().back() == "restore:m");
}

TEST_CASE("semantics 6: the loop breaker fails an attempt that never progresses") {
  TestMachine machine(FakeBootLoader::counting_off("entry-2"));
  establish_last_good(machine);
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  // The generation dies after the initrd every boot: post-activation never runs.
  PhaseResult end;
  int boots = 0;
  for (; boots < 10; ++boots) {
    end = machine.run(Phase::InitrdPreMount);
    if (end.exit != PhaseExit::Ok) break;
    machine.reboot();
  }
  CHECK(boots == static_cast<int>(kMaxBootsWithoutProgress));
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(end.message.find("loop breaker") != std::string::npos);
  CHECK(machine.loader.calls() == std::vector<std::string>{"set_one_shot:entry-1"});
}

TEST_CASE("semantics 7 and the fast path: a boot with nothing pending writes nothing") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  int writes = machine.slots.writes();
  machine.reboot();
  for (Phase phase : kAllPhases) {
    auto result = machine.run(phase);
    CHECK(result.exit == PhaseExit::Ok);
    CHECK(!result.wrote);
  }
  CHECK(machine.slots.writes() == writes);
  CHECK(machine.executor.calls().size() == 1);
}

TEST_CASE("a changed definition of an applied migration is not re-run: the boot fails on it") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"))));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  machine.reboot();
  machine.boot_plan(plan_json(kGen3, migration("m", command_step("a"), R"(,"description":"v2")")));
  // issue #13 item 4: it used to complete with the new definition silently not run.
  CHECK(machine.boot().exit == PhaseExit::Failed);
  CHECK(machine.executor.calls().size() == 1);
  State state = machine.state();
  CHECK(record(state, "m").digest != machine.plan().migrations[0].digest);
}

TEST_CASE("a step awaiting a reboot (firmware) is verified in the next boot") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("fw", command_step("flash"))));
  StepOutcome awaiting;
  awaiting.ok = true;
  awaiting.awaiting_reboot = true;
  awaiting.message = "awaiting reboot";
  StepOutcome verified;
  verified.ok = true;
  verified.message = "device runs 1.2.4";
  machine.executor.script("fw/flash", {awaiting, verified});
  CHECK(machine.boot().exit == PhaseExit::RebootRequired);
  CHECK(record(machine.state(), "fw").steps.at(0).awaiting_reboot);
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(record(machine.state(), "fw").state == MigrationState::Applied);
  CHECK(machine.executor.records_seen.back().awaiting_reboot);
}

TEST_CASE("a failed backup fails the migration's first step, nothing runs unprotected") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a"), R"(,"backup":["/x"])")));
  machine.backups.fail_snapshots(true);
  auto end = machine.boot();
  CHECK(end.exit == PhaseExit::Failed);
  CHECK(machine.executor.calls().empty());
  CHECK(record(machine.state(), "m").steps.at(0).message.find("backup failed") !=
        std::string::npos);
}

TEST_CASE("steps follow `after`, whatever the plan order") {
  TestMachine machine;
  machine.boot_plan(
      plan_json(kGen2, migration("second", command_step("b"), R"(,"after":["first"])") + "," +
                           migration("first", command_step("a"))));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:first/a", "run:second/b"});
}

TEST_CASE("semantics 6: progress in an initrd phase re-arms at once, before a later crash") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, migration("m", command_step("a", "pre-switch-root") + "," +
                                                        command_step("b", "initrd-pre-mount"))));
  CHECK(machine.run(Phase::InitrdPreMount).exit == PhaseExit::Ok);
  CHECK(machine.loader.calls().empty());
  CHECK(machine.run(Phase::PreSwitchRoot).exit == PhaseExit::Ok);
  // Stage 2 never comes up in this boot; the tries were given back already.
  CHECK(machine.loader.calls() == std::vector<std::string>{"rearm"});
}

namespace {
class RecordingSink final : public EventSink {
 public:
  void event(Event, std::string_view) override {}
  void extend_timeout(std::uint64_t usec) override { extensions.push_back(usec); }
  std::vector<std::uint64_t> extensions;
};
}  // namespace

TEST_CASE("before each step the unit's start timeout is extended by the step's timeout") {
  FakeSlotStorage slots;
  StateStore durable(slots);
  StoreAccess store(durable);
  FakeBootLoader loader = FakeBootLoader::counting("entry-2", 3, 0);
  FakeExecutor executor;
  RecordingSink sink;
  PhaseEffects effects;
  effects.store = &store;
  effects.boot_loader = &loader;
  effects.executors = {{StepKind::Command, &executor}};
  effects.events = &sink;
  Plan plan = must_parse(
      plan_json(kGen2, migration("m", command_step("a", "post-activation", R"(,"timeout":30)") +
                                          "," + command_step("b"))));
  auto result = run_phase(Phase::PostActivation, plan, BootFacts{"boot-1", kGen2, 1}, effects);
  REQUIRE(result.has_value());
  CHECK(sink.extensions == std::vector<std::uint64_t>{90'000'000, 660'000'000});
}

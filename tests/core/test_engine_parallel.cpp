// startable_steps() (issue #15 item 4): which steps of independent migrations may run at once.
// Driven directly through the engine's pure functions, the state built by its own transitions.
#include <doctest/doctest.h>

#include "core/engine.hpp"
#include "core/phase_runner.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

// One post-activation run of generation 2's plan, as the engine sees it, with an attempt open.
struct Engine {
  explicit Engine(const std::string& migrations, Phase phase = Phase::PostActivation)
      : plan(must_parse(plan_json(kGen2, migrations))) {
    index = index_plan(plan);
    input.plan = &plan;
    input.index = &index;
    input.recorded = &recorded;
    input.facts = BootFacts{"boot-1", kGen2, 1};
    input.phase = phase;
    auto reconciled = reconcile(State{}, input);
    REQUIRE(reconciled.has_value());
    state = std::move(reconciled->state);
    REQUIRE(state.attempt.has_value());
  }

  // "migration/step" of each startable step, in order.
  std::vector<std::string> startable(const std::vector<std::string_view>& in_flight = {},
                                     std::size_t room = 4) const {
    std::vector<std::string> keys;
    for (const Decision& decision : startable_steps(state, input, in_flight, room)) {
      CHECK(decision.kind == ActionKind::RunStep);
      CHECK_FALSE(decision.undo);
      keys.push_back(decision.migration->id + "/" + decision.step->id);
    }
    return keys;
  }

  Decision decision(const std::string& migration, const std::string& step) const {
    Decision made;
    made.kind = ActionKind::RunStep;
    made.migration = plan.find(migration);
    REQUIRE(made.migration != nullptr);
    for (const Step& candidate : made.migration->steps) {
      if (candidate.id == step) made.step = &candidate;
    }
    REQUIRE(made.step != nullptr);
    return made;
  }

  void start(const std::string& migration, const std::string& step) {
    auto started = step_started(std::move(state), decision(migration, step), input.facts);
    REQUIRE(started.has_value());
    state = std::move(*started);
  }

  void finish(const std::string& migration, const std::string& step, bool ok = true) {
    StepOutcome outcome;
    outcome.ok = ok;
    outcome.message = ok ? "exit status 0" : "exit status 1";
    auto finished =
        step_finished(std::move(state), decision(migration, step), outcome, input.facts);
    REQUIRE(finished.has_value());
    state = std::move(*finished);
  }

  void run(const std::string& migration, const std::string& step, bool ok = true) {
    start(migration, step);
    finish(migration, step, ok);
  }

  Plan plan;
  PlanIndex index;
  std::map<std::string, Migration> recorded;
  EngineInput input;
  State state;
};

using Keys = std::vector<std::string>;

std::string after(const std::string& ids) {
  return R"(,"after":[)" + ids + "]";
}

}  // namespace

TEST_CASE("parallel: independent migrations start together, at most `room` of them") {
  Engine engine(migration("a", command_step("s")) + "," + migration("b", command_step("s")) + "," +
                migration("c", command_step("s")));
  CHECK(engine.startable() == Keys{"a/s", "b/s", "c/s"});
  CHECK(engine.startable({}, 2) == Keys{"a/s", "b/s"});
  CHECK(engine.startable({}, 0).empty());
  // Beside the ones in flight, only the others.
  engine.start("a", "s");
  engine.start("b", "s");
  CHECK(engine.startable({"a", "b"}, 2) == Keys{"c/s"});
  engine.finish("a", "s");
  // b is still recorded running, and nothing says it is in flight: interrupted, resumed alone.
  CHECK(engine.startable({}).empty());
  CHECK(engine.startable({"b"}) == Keys{"c/s"});
}

TEST_CASE("parallel: a chain runs one at a time, each after the one before it") {
  Engine engine(migration("c", command_step("s"), after(R"("b")")) + "," +
                migration("b", command_step("s"), after(R"("a")")) + "," +
                migration("a", command_step("s")));
  CHECK(engine.startable() == Keys{"a/s"});
  engine.start("a", "s");
  CHECK(engine.startable({"a"}).empty());
  engine.finish("a", "s");
  CHECK(engine.startable() == Keys{"b/s"});
  engine.run("b", "s");
  CHECK(engine.startable() == Keys{"c/s"});
}

TEST_CASE("parallel: a diamond runs its two middle migrations together, the last after both") {
  Engine engine(migration("top", command_step("s")) + "," +
                migration("left", command_step("s"), after(R"("top")")) + "," +
                migration("right", command_step("s"), after(R"("top")")) + "," +
                migration("bottom", command_step("s"), after(R"("left","right")")));
  CHECK(engine.startable() == Keys{"top/s"});
  engine.run("top", "s");
  CHECK(engine.startable() == Keys{"left/s", "right/s"});
  engine.start("left", "s");
  engine.start("right", "s");
  engine.finish("left", "s");
  // bottom follows right too, which still runs.
  CHECK(engine.startable({"right"}).empty());
  engine.finish("right", "s");
  CHECK(engine.startable() == Keys{"bottom/s"});
}

TEST_CASE("parallel: a migration after a failed one never starts; an independent one does") {
  Engine engine(migration("a", command_step("s"), "", "recommended") + "," +
                migration("b", command_step("s"), after(R"("a")"), "recommended") + "," +
                migration("c", command_step("s"), "", "recommended"));
  CHECK(engine.startable() == Keys{"a/s", "c/s"});
  engine.start("a", "s");
  engine.start("c", "s");
  engine.finish("a", "s", false);
  CHECK(engine.startable({"c"}).empty());
  engine.finish("c", "s");
  CHECK(engine.startable().empty());
}

TEST_CASE("parallel: a failed required step fails the attempt, and nothing more starts") {
  Engine engine(migration("a", command_step("s")) + "," + migration("b", command_step("s")) + "," +
                migration("c", command_step("s")));
  engine.start("a", "s");
  engine.start("b", "s");
  engine.finish("a", "s", false);
  REQUIRE(engine.state.attempt->state == AttemptState::Failed);
  CHECK(engine.startable({"b"}).empty());
}

TEST_CASE("parallel: never two steps of one migration; its next step once the first is done") {
  Engine engine(migration("m", command_step("one") + "," + command_step("two")) + "," +
                migration("n", command_step("s")));
  CHECK(engine.startable() == Keys{"m/one", "n/s"});
  engine.start("m", "one");
  CHECK(engine.startable({"m"}) == Keys{"n/s"});
  engine.finish("m", "one");
  CHECK(engine.startable() == Keys{"m/two", "n/s"});
}

TEST_CASE("parallel: a reboot request holds its migration and those after it, not the others") {
  // The contract: a migration that asks for a reboot lets the independent ones of the same phase
  // finish first.
  Engine engine(migration("a", command_step("s", "post-activation", R"(,"reboot":true)") + "," +
                                   command_step("t")) +
                "," + migration("b", command_step("s") + "," + command_step("t")) + "," +
                migration("c", command_step("s")) + "," +
                migration("after-a", command_step("s"), after(R"("a")")));
  engine.start("a", "s");
  engine.start("b", "s");
  engine.finish("a", "s");
  CHECK(engine.startable({"b"}) == Keys{"c/s"});
  engine.finish("b", "s");
  CHECK(engine.startable() == Keys{"b/t", "c/s"});
  // next() itself stops at the reboot request: the runner never opens a batch after it.
  auto decision = next(engine.state, engine.input);
  REQUIRE(decision.has_value());
  CHECK(decision->kind == ActionKind::None);
}

TEST_CASE("parallel: a reboot asked by a migration's last step holds those after it") {
  Engine engine(migration("a", command_step("s", "post-activation", R"(,"reboot":true)")) + "," +
                migration("after-a", command_step("s"), after(R"("a")")) + "," +
                migration("after-that", command_step("s"), after(R"("after-a")")) + "," +
                migration("c", command_step("s")));
  engine.start("a", "s");
  engine.start("c", "s");
  engine.finish("a", "s");
  REQUIRE(engine.state.find("a")->state == MigrationState::Applied);
  CHECK(engine.startable({"c"}).empty());
  engine.finish("c", "s");
  CHECK(engine.startable().empty());
}

TEST_CASE("parallel: a reboot asked by an undo step holds everything") {
  Engine engine(migration("b", command_step("s")));
  // A stale migration whose undo step asked for a reboot in this boot, its undo complete.
  MigrationRecord stale;
  stale.id = "old";
  stale.state = MigrationState::Undone;
  stale.definition_json =
      R"({"id":"old","policy":"required","steps":[{"id":"s","phase":"post-activation",)"
      R"("kind":"command","command":["/bin/true"]}],"undo":[{"id":"u","phase":"post-activation",)"
      R"("kind":"command","command":["/bin/true"],"reboot":true}]})";
  StepRecord undo;
  undo.id = "u";
  undo.state = StepState::Done;
  undo.boot_id = "boot-1";
  stale.undo_steps.push_back(undo);
  engine.state.migrations.push_back(stale);
  engine.recorded = recorded_definitions(engine.state, engine.plan);
  REQUIRE(engine.recorded.count("old") == 1);
  CHECK(engine.startable().empty());
}

TEST_CASE("parallel: backups, storage and firmware steps, and other phases stay serial") {
  Engine engine(migration("backed", command_step("s"), R"(,"backup":["/var/lib/x"])") + "," +
                migration("fw",
                          R"({"id":"f","phase":"post-activation","kind":"firmware","device":"d",)"
                          R"("cabinet":"/nix/store/x.cab","version":"1"})") +
                "," + migration("later", command_step("s", "initrd-pre-mount")) + "," +
                migration("plain", command_step("s")));
  CHECK(engine.startable() == Keys{"plain/s"});
}

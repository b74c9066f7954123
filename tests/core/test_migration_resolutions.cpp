// Resolutions on migrations (issue #15, "generate new choices during execution"; docs/DESIGN.md
// "Items reported by a running step"): a migration's `resolutions[]` are parsed and validated
// like a check's, a running step's item may offer them, and a chosen one runs as migration
// "MIGRATION.RESOLUTION" before the migration's failed step is retried. Every test here failed
// before the change: `resolutions` was an unknown key of a migration, and a step's item naming
// a resolution failed the step as undeclared.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/choices.hpp"
#include "core/engine.hpp"
#include "core/operator.hpp"
#include "core/step_items.hpp"
#include "core/store.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::string kStep = R"({"id":"a","phase":"post-activation","kind":"command",)"
                          R"("command":["/bin/true"]})";
const std::string kFix = R"({"id":"fix-it","description":"repair the rows",)"
                         R"("steps":[{"id":"go","phase":"post-activation","kind":"command",)"
                         R"("command":["/bin/fix"]}],)"
                         R"("undo":[{"id":"back","phase":"post-activation","kind":"command",)"
                         R"("command":["/bin/unfix"]}]})";

std::string plan_of(const std::string& migrations, const std::string& rest = "") {
  return R"({"schema":1,"generation":"/nix/store/g","migrations":[)" + migrations + "]" + rest +
         "}";
}

std::string m_with(const std::string& resolutions, const std::string& extra = "") {
  return R"({"id":"m","policy":"required")" + extra + R"(,"steps":[)" + kStep +
         R"(],"undo":[{"id":"back","phase":"post-activation","kind":"command",)"
         R"("command":["/bin/true"]}],"resolutions":[)" +
         resolutions + "]}";
}

void check_rejected(const std::string& json, const std::string& fragment) {
  auto plan = parse_plan(json, "plan.json");
  REQUIRE_MESSAGE(!plan.has_value(), "accepted: " << json);
  CHECK(plan.error().code == ErrorCode::InvalidInput);
  CHECK_MESSAGE(contains(plan.error().message, fragment),
                "message \"" << plan.error().message << "\" lacks \"" << fragment << "\"");
}

StepOutcome reporting(const std::string& line) {
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message = "exit status 0";
  outcome.reported_items = line;
  return outcome;
}

const std::string kErrorOfferingFix =
    R"({"id":"bad-rows","severity":"error","message":"rows without owner",)"
    R"("resolutions":["fix-it"],"default":"fix-it"})";

std::size_t position(const std::vector<std::string>& calls, const std::string& call) {
  return static_cast<std::size_t>(std::find(calls.begin(), calls.end(), call) - calls.begin());
}

}  // namespace

TEST_CASE("a migration's resolutions parse as MIGRATION.RESOLUTION, outside its definition") {
  const std::string plain = R"({"id":"m","policy":"required","steps":[)" + kStep +
                            R"(],"undo":[{"id":"back","phase":"post-activation","kind":"command",)"
                            R"("command":["/bin/true"]}]})";
  auto without = parse_plan(plan_of(plain), "plan.json");
  auto with = parse_plan(plan_of(m_with(kFix)), "plan.json");
  REQUIRE_MESSAGE(without.has_value(), without.error().message);
  REQUIRE_MESSAGE(with.has_value(), with.error().message);
  const Migration& m = with->migrations.at(0);
  REQUIRE(m.resolutions.size() == 1);
  const CheckResolution& fix = m.resolutions[0];
  CHECK(fix.id == "fix-it");
  CHECK(fix.description == "repair the rows");
  CHECK(fix.migration.id == "m.fix-it");
  CHECK(fix.migration.policy == Policy::Required);
  CHECK(fix.migration.undo.size() == 1);
  CHECK(m.find_resolution("fix-it") == &fix);
  CHECK(m.find_resolution("nope") == nullptr);
  CHECK(with->has_migration_resolutions);
  CHECK(with->offers_resolutions());
  CHECK_FALSE(without->offers_resolutions());
  CHECK(with->resolutions_of("m/a") == &m.resolutions);
  CHECK(with->resolutions_of("nope/a") == nullptr);
  CHECK(resolution_migration_id("m/a", "fix-it") == "m.fix-it");
  CHECK(resolution_migration_id("pg", "dump") == "pg.dump");
  // Not a migration of the plan until chosen.
  CHECK(with->find("m.fix-it") == nullptr);
  // The migration's own definition (recorded for undo) and digest leave the templates out:
  // changing a template is not a changed migration. The plan digest covers them.
  CHECK(m.definition_json == without->migrations[0].definition_json);
  CHECK(m.digest == without->migrations[0].digest);
  CHECK(with->digest != without->digest);
  CHECK(without->digest == text_digest("[" + plain + "]"));  // unchanged for plans without
  auto recorded = parse_migration_definition(fix.migration.definition_json);
  REQUIRE_MESSAGE(recorded.has_value(), recorded.error().message);
  CHECK(recorded->id == "m.fix-it");
}

TEST_CASE("bad migration resolutions are refused naming the JSON path") {
  check_rejected(plan_of(m_with(kFix + "," + kFix)),
                 "migrations[0].resolutions[1].id: duplicate resolution id \"fix-it\"");
  check_rejected(plan_of(m_with(R"({"id":"Fix","steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].id: invalid id \"Fix\"");
  check_rejected(plan_of(m_with(R"({"id":"r","steps":[]})")),
                 "migrations[0].resolutions[0].steps: must be a non-empty array of steps");
  check_rejected(plan_of(m_with(R"({"id":"r","policy":"optional","steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].policy: unknown key");
  check_rejected(plan_of(m_with("")), "migrations[0].resolutions: must be a non-empty array");
  check_rejected(
      plan_of(R"({"id":"m","policy":"required","steps":[)" + kStep + R"(],"resolutions":{}})"),
      "migrations[0].resolutions: expected an array");
  // A template has no templates of its own.
  check_rejected(plan_of(m_with(R"({"id":"r","resolutions":[],"steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].resolutions: unknown key");
  check_rejected(plan_of(m_with(R"({"id":"r","after":["nope"],"steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].after[0]: unknown migration \"nope\"");
  // The migration runs after its chosen resolution: the resolution may not follow it, or
  // anything that follows it.
  check_rejected(plan_of(m_with(R"({"id":"r","after":["m"],"steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].after[0]: \"m\" is the migration itself");
  const std::string follower =
      R"({"id":"n","policy":"required","after":["m"],"steps":[)" + kStep + "]}";
  check_rejected(
      plan_of(m_with(R"({"id":"r","after":["n"],"steps":[)" + kStep + "]}") + "," + follower),
      "migrations[0].resolutions[0].after[0]: \"n\" runs after the migration");
  // Ids: at most 64 characters, not a plan migration's, not another resolution's.
  const std::string long_id(63, 'r');
  check_rejected(plan_of(m_with(R"({"id":")" + long_id + R"(","steps":[)" + kStep + "]}")),
                 "migrations[0].resolutions[0].id: the migration id \"m." + long_id);
  const std::string taken = R"({"id":"m.r","policy":"required","steps":[)" + kStep + "]}";
  check_rejected(plan_of(m_with(R"({"id":"r","steps":[)" + kStep + "]}") + "," + taken),
                 "migrations[0].resolutions[0].id: it runs as migration \"m.r\", which the plan");
  const std::string ab = R"({"id":"a.b","policy":"required","steps":[)" + kStep +
                         R"(],"resolutions":[{"id":"c","steps":[)" + kStep + "]}]}";
  const std::string a = R"({"id":"a","policy":"required","steps":[)" + kStep +
                        R"(],"resolutions":[{"id":"b.c","steps":[)" + kStep + "]}]}";
  check_rejected(plan_of(ab + "," + a),
                 "migrations[1].resolutions[0].id: migration id \"a.b.c\" "
                 "is also a resolution of migration \"a.b\"");
  const std::string check = R"(,"checks":[{"id":"m","phase":"post-activation","command":["/c"],)"
                            R"("resolutions":[{"id":"fix-it","steps":[)" +
                            kStep + "]}]}]";
  check_rejected(plan_of(m_with(kFix), check),
                 "checks[0].resolutions[0].id: migration id \"m.fix-it\" is also a resolution of "
                 "migration \"m\"");
}

TEST_CASE("a step's item may offer its migration's resolutions, and no other") {
  Plan plan = must_parse(plan_json(kGen2, m_with(kFix)));
  const Migration& m = plan.migrations[0];
  auto offered = step_items(m, "a", false, reporting(kErrorOfferingFix), State{}, kGen2, 1, 5);
  CHECK(contains(offered.failure, "reported error \"bad-rows\""));  // an error still fails it
  REQUIRE(offered.records.size() == 1);
  const ItemRecord& item = offered.records[0];
  CHECK(item.check == "m/a");
  REQUIRE(item.resolutions.size() == 1);
  CHECK(item.resolutions[0].id == "fix-it");
  CHECK(item.resolutions[0].description == "repair the rows");
  CHECK(item.default_resolution == "fix-it");

  auto undeclared = step_items(
      m, "a", false,
      reporting(R"({"id":"x","severity":"warning","message":"w","resolutions":["nuke"]})"), State{},
      kGen2, 1, 5);
  CHECK_MESSAGE(
      contains(undeclared.failure, "\"nuke\" is not a resolution migration \"m\" declares"),
      undeclared.failure);
  CHECK(undeclared.records.empty());
  // An undo step offers none: a stale migration is only undone.
  auto undo = step_items(m, "back", true, reporting(kErrorOfferingFix), State{}, kGen2, 1, 5);
  CHECK_MESSAGE(contains(undo.failure, "is not a resolution the undo of migration \"m\" declares"),
                undo.failure);
}

TEST_CASE("plan_with_choices: the chosen resolution runs before its migration") {
  Plan plan = must_parse(plan_json(kGen2, m_with(kFix)));
  State state;
  ItemRecord item;
  item.id = "bad-rows";
  item.check = "m/a";
  item.severity = "error";
  item.message = "rows without owner";
  item.resolutions = {{"fix-it", "repair the rows"}};
  item.generation = kGen2;
  auto chosen = choose_resolution(state, {item}, &plan, "m/a/bad-rows", "fix-it", 7);
  REQUIRE_MESSAGE(chosen.has_value(), chosen.error().message);
  REQUIRE(chosen->choices.size() == 1);
  CHECK(chosen->choices[0].check == "m/a");  // the item's source: its identity
  CHECK(chosen->choices[0].resolution == "fix-it");
  auto expanded = plan_with_choices(plan, *chosen, kGen2);
  REQUIRE(expanded.has_value());
  REQUIRE(expanded->find("m.fix-it") != nullptr);
  CHECK(expanded->find("m")->after == std::vector<std::string>{"m.fix-it"});
  CHECK(expanded->find("m")->digest == plan.find("m")->digest);  // not a changed migration
  const std::vector<std::size_t> order = migration_order(*expanded);
  REQUIRE(order.size() == 2);
  CHECK(expanded->migrations[order[0]].id == "m.fix-it");
  CHECK(expanded->migrations[order[1]].id == "m");
  // Another generation's plan does not get it.
  CHECK_FALSE(plan_with_choices(plan, *chosen, kGen3).has_value());
  // The item is chosen; its resolution is not applied yet.
  auto views = item_views(chosen->items, *chosen);
  REQUIRE(views.size() == 1);
  CHECK(views[0].state == ItemState::Chosen);
  CHECK_FALSE(views[0].blocker);
  // --clear withdraws it: the plan is the plan again.
  auto cleared = clear_choice(*chosen, "m/a/bad-rows");
  REQUIRE_MESSAGE(cleared.has_value(), cleared.error().message);
  CHECK_FALSE(plan_with_choices(plan, *cleared, kGen2).has_value());
  // A plan whose migration no longer declares it: refused, naming the migration.
  Plan changed =
      must_parse(plan_json(kGen2, R"({"id":"m","policy":"required","steps":[)" + kStep + "]}"));
  auto gone = choose_resolution(state, {item}, &changed, "bad-rows", "fix-it", 7);
  REQUIRE_FALSE(gone.has_value());
  CHECK_MESSAGE(contains(gone.error().message, "migration \"m\" does not declare it"),
                gone.error().message);
}

TEST_CASE("two chosen resolutions that would close a cycle: the second is left out") {
  // m1's resolution follows x, which follows m2; m2's follows y, which follows m1. Each is
  // valid alone; together m1 → y → m2.r → m2 → x → m1.r → m1 would be a cycle.
  auto migration_of = [](const std::string& id, const std::string& after,
                         const std::string& resolutions) {
    return R"({"id":")" + id + R"(","policy":"required")" +
           (after.empty() ? "" : R"(,"after":[")" + after + R"("])") + R"(,"steps":[)" + kStep +
           "]" + (resolutions.empty() ? "" : R"(,"resolutions":[)" + resolutions + "]") + "}";
  };
  auto resolution_after = [](const std::string& after) {
    return R"({"id":"r","after":[")" + after + R"("],"steps":[)" + kStep + "]}";
  };
  Plan plan = must_parse(plan_json(kGen2, migration_of("m1", "", resolution_after("x")) + "," +
                                              migration_of("m2", "", resolution_after("y")) + "," +
                                              migration_of("x", "m2", "") + "," +
                                              migration_of("y", "m1", "")));
  State state;
  state.choices.push_back({"i1", "m1/a", "r", 1, kGen2});
  state.choices.push_back({"i2", "m2/a", "r", 2, kGen2});
  auto expanded = plan_with_choices(plan, state, kGen2);
  REQUIRE(expanded.has_value());
  CHECK(expanded->find("m1.r") != nullptr);
  CHECK(expanded->find("m2.r") == nullptr);
  CHECK(migration_order(*expanded).size() == expanded->migrations.size());
}

TEST_CASE("engine: after the choice the next boot runs M.RES, then retries M's failed step") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, m_with(kFix)));
  StepOutcome fixed = reporting("");
  machine.executor.script("m/a", {reporting(kErrorOfferingFix), fixed});
  CHECK(machine.boot().exit == PhaseExit::Failed);
  State failed = machine.state();
  REQUIRE(failed.attempt->state == AttemptState::Failed);
  CHECK(failed.find("m")->state == MigrationState::Failed);
  REQUIRE(failed.items.size() == 1);
  CHECK(failed.items[0].check == "m/a");
  CHECK(failed.items[0].resolutions.at(0).id == "fix-it");

  auto chosen = choose_resolution(failed, failed.items, &machine.plan(), "bad-rows", "fix-it", 10);
  REQUIRE_MESSAGE(chosen.has_value(), chosen.error().message);
  // As `bootstate retry m`: the attempt goes on and m's failed step is pending again.
  CHECK(chosen->attempt->state == AttemptState::InProgress);
  CHECK(chosen->find("m")->state == MigrationState::Pending);
  CHECK(chosen->find("m")->steps.at(0).state == StepState::Pending);
  REQUIRE(StateStore(machine.slots).commit(*chosen));

  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  const std::vector<std::string> calls = machine.executor.calls();
  const std::size_t fix = position(calls, "run:m.fix-it/go");
  const std::size_t second_run = static_cast<std::size_t>(
      std::find(calls.begin() + static_cast<std::ptrdiff_t>(position(calls, "run:m/a")) + 1,
                calls.end(), "run:m/a") -
      calls.begin());
  REQUIRE(fix < calls.size());
  REQUIRE(second_run < calls.size());
  CHECK(fix < second_run);
  State done = machine.state();
  CHECK(done.attempt->state == AttemptState::Complete);
  CHECK(done.find("m.fix-it")->state == MigrationState::Applied);
  CHECK(done.find("m")->state == MigrationState::Applied);
  auto views = item_views(done.items, done);
  REQUIRE(views.size() == 1);
  CHECK(views[0].state == ItemState::Resolved);

  // Booting a generation without it undoes m.fix-it like any stale migration.
  machine.boot_plan(plan_json(kGen1, ""));
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.state().find("m.fix-it")->state == MigrationState::Undone);
  const std::vector<std::string> undone = machine.executor.calls();
  const std::size_t undo_m = position(undone, "run:m/back");
  const std::size_t undo_fix = position(undone, "run:m.fix-it/back");
  REQUIRE(undo_fix < undone.size());
  CHECK(undo_m < undo_fix);  // newest first: m ran after its resolution
}

TEST_CASE("the same error again after its chosen resolution was applied fails M again") {
  TestMachine machine;
  machine.boot_plan(plan_json(kGen2, m_with(kFix)));
  machine.executor.script("m/a", {reporting(kErrorOfferingFix)});  // repeats
  CHECK(machine.boot().exit == PhaseExit::Failed);
  State failed = machine.state();
  auto chosen = choose_resolution(failed, failed.items, &machine.plan(), "bad-rows", "fix-it", 10);
  REQUIRE_MESSAGE(chosen.has_value(), chosen.error().message);
  REQUIRE(StateStore(machine.slots).commit(*chosen));
  machine.reboot();
  CHECK(machine.boot().exit == PhaseExit::Failed);
  State again = machine.state();
  CHECK(again.find("m.fix-it")->state == MigrationState::Applied);
  CHECK(again.find("m")->state == MigrationState::Failed);
  CHECK_MESSAGE(contains(again.find("m")->message,
                         "still reports error \"bad-rows\" after its chosen resolution \"fix-it\" "
                         "was applied"),
                again.find("m")->message);
  CHECK(again.attempt->state == AttemptState::Failed);
  // Not "resolved": reported again after its resolution ran.
  auto views = item_views(again.items, again);
  REQUIRE(views.size() == 1);
  CHECK(views[0].state == ItemState::Failed);
}

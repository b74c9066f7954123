// Plan `checks[]` (docs/DESIGN.md "Checks and resolutions"): validated like migrations, every
// rejection naming the JSON path; a resolution is a migration template that must pass the
// migration rules as "CHECK.RESOLUTION".
#include <doctest/doctest.h>

#include <string>

#include "core/plan.hpp"

using namespace bootstate;

namespace {

const std::string kMigration =
    R"({"id":"m","policy":"required","steps":[{"id":"s","phase":"post-activation",)"
    R"("kind":"command","command":["/bin/true"]}]})";

const std::string kResolution =
    R"({"id":"dump-restore","description":"dump and restore","backup":["/var/lib/db"],)"
    R"("steps":[{"id":"go","phase":"post-activation","kind":"command","command":["/bin/r"]}],)"
    R"("undo":[{"id":"back","phase":"post-activation","kind":"command","command":["/bin/u"]}]})";

std::string plan_with_checks(const std::string& checks) {
  return R"({"schema":1,"generation":"/nix/store/g","migrations":[)" + kMigration +
         R"(],"checks":)" + checks + "}";
}

std::string check_with(const std::string& extra, const std::string& resolutions = kResolution) {
  return R"([{"id":"pg","description":"data version","phase":"post-activation",)"
         R"("command":["/bin/check","--x"])" +
         extra + R"(,"resolutions":[)" + resolutions + "]}]";
}

void check_rejected(const std::string& json, const std::string& fragment) {
  auto plan = parse_plan(json, "plan.json");
  REQUIRE_MESSAGE(!plan.has_value(), "accepted: " << json);
  CHECK(plan.error().code == ErrorCode::InvalidInput);
  CHECK_MESSAGE(plan.error().message.find(fragment) != std::string::npos,
                "message \"" << plan.error().message << "\" lacks \"" << fragment << "\"");
}

}  // namespace

TEST_CASE("a check with resolutions parses; a resolution is migration CHECK.RESOLUTION") {
  auto plan = parse_plan(plan_with_checks(check_with(R"(,"timeout":30)")), "plan.json");
  REQUIRE_MESSAGE(plan.has_value(), plan.error().message);
  REQUIRE(plan->checks.size() == 1);
  const Check& check = plan->checks[0];
  CHECK(check.id == "pg");
  CHECK(check.description == "data version");
  CHECK(check.phase == Phase::PostActivation);
  CHECK(check.argv == std::vector<std::string>{"/bin/check", "--x"});
  CHECK(check.timeout_seconds == 30);
  REQUIRE(check.resolutions.size() == 1);
  const CheckResolution& resolution = check.resolutions[0];
  CHECK(resolution.id == "dump-restore");
  CHECK(resolution.description == "dump and restore");
  CHECK(resolution.migration.id == "pg.dump-restore");
  CHECK(resolution.migration.policy == Policy::Required);
  CHECK(resolution.migration.backup == std::vector<std::string>{"/var/lib/db"});
  CHECK(resolution.migration.undo.size() == 1);
  CHECK(plan->find_check("pg") == &check);
  CHECK(check.find("dump-restore") == &resolution);
  CHECK(check.find("nope") == nullptr);
  // The recorded definition re-parses (undo works after the plan is gone).
  auto again = parse_migration_definition(resolution.migration.definition_json);
  REQUIRE_MESSAGE(again.has_value(), again.error().message);
  CHECK(again->id == "pg.dump-restore");
  // Resolutions are not migrations of the plan until chosen.
  CHECK(plan->find("pg.dump-restore") == nullptr);
}

TEST_CASE("the default timeout of a check is 120 s; a check without resolutions is valid") {
  auto plan = parse_plan(
      plan_with_checks(R"([{"id":"c","phase":"initrd-pre-mount","command":["/bin/c"]}])"),
      "plan.json");
  REQUIRE_MESSAGE(plan.has_value(), plan.error().message);
  CHECK(plan->checks[0].timeout_seconds == 120);
  CHECK(plan->checks[0].resolutions.empty());
}

TEST_CASE("a plan without checks keeps the digest it had before checks existed") {
  const std::string base =
      R"({"schema":1,"generation":"/nix/store/g","migrations":[)" + kMigration + "]}";
  auto without = parse_plan(base, "plan.json");
  auto empty = parse_plan(plan_with_checks("[]"), "plan.json");
  auto with = parse_plan(plan_with_checks(check_with("")), "plan.json");
  REQUIRE(without.has_value());
  REQUIRE(empty.has_value());
  REQUIRE(with.has_value());
  CHECK(without->digest == text_digest("[" + kMigration + "]"));
  CHECK(empty->digest == without->digest);
  CHECK(with->digest != without->digest);
}

TEST_CASE("bad checks are refused naming the JSON path") {
  check_rejected(plan_with_checks("{}"), "checks: expected an array");
  check_rejected(plan_with_checks(R"([{"id":"c","phase":"post-activation"}])"),
                 "checks[0].command");
  check_rejected(plan_with_checks(R"([{"id":"C","phase":"post-activation","command":["/x"]}])"),
                 "checks[0].id: invalid id \"C\"");
  check_rejected(plan_with_checks(R"([{"id":"c","phase":"boot","command":["/x"]}])"),
                 "checks[0].phase: unknown phase \"boot\"");
  check_rejected(plan_with_checks(R"([{"id":"c","phase":"post-activation","command":["x"]}])"),
                 "checks[0].command[0]: \"x\" is not an absolute path");
  check_rejected(plan_with_checks(R"([{"id":"c","phase":"post-activation","command":[]}])"),
                 "checks[0].command: must be a non-empty array");
  check_rejected(
      plan_with_checks(R"([{"id":"c","phase":"post-activation","command":["/x"],"timeout":0}])"),
      "checks[0].timeout: must be between 1 and 86400 seconds");
  check_rejected(
      plan_with_checks(R"([{"id":"c","phase":"post-activation","command":["/x"],"shell":"y"}])"),
      "checks[0].shell: unknown key");
  check_rejected(plan_with_checks(R"([{"id":"c","phase":"post-activation","command":["/x"]},)"
                                  R"({"id":"c","phase":"post-activation","command":["/y"]}])"),
                 "checks[1].id: duplicate check id \"c\"");
}

TEST_CASE("bad resolutions are refused naming the JSON path") {
  check_rejected(plan_with_checks(check_with("", kResolution + "," + kResolution)),
                 "checks[0].resolutions[1].id: duplicate resolution id \"dump-restore\"");
  check_rejected(plan_with_checks(check_with("", R"({"id":"r","policy":"required","steps":[]})")),
                 "checks[0].resolutions[0].policy: unknown key");
  check_rejected(plan_with_checks(check_with("", R"({"id":"r"})")),
                 "checks[0].resolutions[0].steps: must be a non-empty array of steps");
  check_rejected(
      plan_with_checks(check_with(
          "",
          R"({"id":"r","steps":[{"id":"s","phase":"later","kind":"command","command":["/r"]}]})")),
      "checks[0].resolutions[0].steps[0].phase: unknown phase \"later\"");
  check_rejected(
      plan_with_checks(check_with(
          "", R"({"id":"r","after":["nope"],"steps":[{"id":"s","phase":"post-activation",)"
              R"("kind":"command","command":["/r"]}]})")),
      "checks[0].resolutions[0].after[0]: unknown migration \"nope\"");
  check_rejected(
      plan_with_checks(check_with(
          "", R"({"id":"r","backup":["/a/../b"],"steps":[{"id":"s","phase":"post-activation",)"
              R"("kind":"command","command":["/r"]}]})")),
      "checks[0].resolutions[0].backup[0]");
  // The migration id it runs as: too long, or one the plan already has.
  const std::string long_id(62, 'r');
  check_rejected(
      plan_with_checks(check_with(
          "",
          R"({"id":")" + long_id +
              R"(","steps":[{"id":"s","phase":"post-activation","kind":"command","command":["/r"]}]})")),
      "checks[0].resolutions[0].id: the migration id \"pg." + long_id);
  const std::string clash =
      R"({"schema":1,"generation":"/nix/store/g","migrations":[)"
      R"({"id":"pg.r","policy":"required","steps":[{"id":"s","phase":"post-activation",)"
      R"("kind":"command","command":["/bin/true"]}]}],"checks":)" +
      check_with("", R"({"id":"r","steps":[{"id":"s","phase":"post-activation","kind":"command",)"
                     R"("command":["/r"]}]})") +
      "}";
  check_rejected(clash,
                 "checks[0].resolutions[0].id: it runs as migration \"pg.r\", which the plan");
  // "a.b"+"c" and "a"+"b.c" would be one migration.
  check_rejected(
      plan_with_checks(
          R"([{"id":"a.b","phase":"post-activation","command":["/x"],"resolutions":[)"
          R"({"id":"c","steps":[{"id":"s","phase":"post-activation","kind":"command","command":["/r"]}]}]},)"
          R"({"id":"a","phase":"post-activation","command":["/x"],"resolutions":[)"
          R"({"id":"b.c","steps":[{"id":"s","phase":"post-activation","kind":"command","command":["/r"]}]}]}])"),
      "checks[1].resolutions[0].id: migration id \"a.b.c\" is also another check's resolution");
  check_rejected(
      plan_with_checks(check_with(
          "", R"({"id":"r","user":"postgres","steps":[{"id":"s","phase":"post-activation",)"
              R"("kind":"command","command":["/r"]}]})")),
      "checks[0].resolutions[0].user: a resolution runs as the `user`/`group` of each of its "
      "steps");
}

// docs/DESIGN.md "Checks run as a user": the rules of a command step's `user`/`group`.
std::string check_in(const std::string& phase, const std::string& account) {
  return plan_with_checks(R"([{"id":"c","phase":")" + phase + R"(","command":["/x"])" + account +
                          "}]");
}

TEST_CASE("a check takes user and group like a command step") {
  auto named =
      parse_plan(check_in("post-activation", R"(,"user":"postgres","group":"wheel")"), "plan.json");
  REQUIRE_MESSAGE(named.has_value(), named.error().message);
  CHECK(named->checks[0].user == "postgres");
  CHECK(named->checks[0].group == "wheel");
  auto numeric =
      parse_plan(check_in("initrd-pre-mount", R"(,"user":"70","group":"71")"), "plan.json");
  REQUIRE_MESSAGE(numeric.has_value(), numeric.error().message);
  CHECK(numeric->checks[0].user == "70");
  CHECK(numeric->checks[0].group == "71");
  auto root = parse_plan(check_in("post-activation", ""), "plan.json");
  REQUIRE(root.has_value());
  CHECK(root->checks[0].user.empty());
  CHECK(root->checks[0].group.empty());
  // The account is part of the plan's digest: running as another user is another plan.
  CHECK(named->digest != root->digest);
  // A resolution's steps run as their own user (a resolution is a migration).
  auto resolution_step = parse_plan(
      plan_with_checks(check_with(
          "", R"({"id":"r","steps":[{"id":"s","phase":"post-activation","kind":"command",)"
              R"("command":["/r"],"user":"postgres"}]})")),
      "plan.json");
  REQUIRE_MESSAGE(resolution_step.has_value(), resolution_step.error().message);
  CHECK(resolution_step->checks[0].resolutions[0].migration.steps[0].command.user == "postgres");
}

TEST_CASE("a check's bad user or group is refused naming the field") {
  check_rejected(check_in("post-activation", R"(,"user":70)"), "checks[0].user");
  check_rejected(check_in("post-activation", R"(,"group":["wheel"])"), "checks[0].group");
  check_rejected(check_in("post-activation", R"(,"user":"")"),
                 "checks[0].user: \"\" is neither a user or group name nor a numeric id");
  check_rejected(check_in("post-activation", R"(,"user":"-rf")"), "checks[0].user: \"-rf\"");
  check_rejected(check_in("post-activation", R"(,"user":"4294967295")"),
                 "checks[0].user: a numeric id must be between 0 and 4294967294");
  // Names only where the system's account database is: not in the initrd phases.
  check_rejected(check_in("initrd-pre-mount", R"(,"user":"postgres")"),
                 "checks[0].user: \"postgres\": in phase initrd-pre-mount only a numeric id");
  check_rejected(check_in("pre-switch-root", R"(,"group":"wheel")"),
                 "checks[0].group: \"wheel\": in phase pre-switch-root only a numeric id");
}

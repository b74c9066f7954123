// Item lines and check outcomes (docs/DESIGN.md "Checks and resolutions"): a check that goes
// wrong in any way is an error item of its own, never a pass. The process is faked here;
// tests/stage2/test_check_runner.cpp runs real ones.
#include <doctest/doctest.h>

#include <string>

#include "core/check_items.hpp"

using namespace bootstate;

namespace {

Check pg_check() {
  Check check;
  check.id = "pg";
  check.phase = Phase::PostActivation;
  check.argv = {"/bin/check"};
  for (const char* id : {"dump-restore", "restore-backup"}) {
    CheckResolution resolution;
    resolution.id = id;
    check.resolutions.push_back(resolution);
  }
  return check;
}

ProcessResult exited(int status, std::string out) {
  ProcessResult result;
  result.started = true;
  result.exit_status = status;
  result.message = fmt::format("exit status {}", status);
  result.stdout_text = std::move(out);
  return result;
}

// The single error item a broken run gives, whose message must contain `fragment`.
void check_failed(const ProcessResult& result, const std::string& fragment) {
  auto items = items_of_run(pg_check(), result);
  REQUIRE(items.size() == 1);
  CHECK(items[0].id == "check-failed");
  CHECK(items[0].check == "pg");
  CHECK(items[0].severity == Severity::Error);
  CHECK(items[0].resolutions.empty());
  CHECK_MESSAGE(items[0].message.find(fragment) != std::string::npos,
                "\"" << items[0].message << "\" lacks \"" << fragment << "\"");
  CHECK(blocks(items[0], false));
}

const std::string kLine =
    R"({"id": "pg-15-to-14", "severity": "error", "message": "data newer than server", )"
    R"("resolutions": ["dump-restore", "restore-backup"], "default": "dump-restore"})";

class FakeRunner : public CheckRunner {
 public:
  ProcessResult run(const Check& check, const CheckRunContext& context) override {
    ran.push_back(check.id + "@" + std::string(to_string(context.phase)));
    return exited(0, check.id == "a" ? R"({"id":"x","severity":"warning","message":"m"})" : "");
  }
  std::vector<std::string> ran;
};

}  // namespace

TEST_CASE("item lines: every field, blank lines skipped, no line and exit 0 is a pass") {
  auto items = items_of_run(pg_check(), exited(0, "\n" + kLine + "\n\n"));
  REQUIRE(items.size() == 1);
  CHECK(items[0].id == "pg-15-to-14");
  CHECK(items[0].check == "pg");
  CHECK(items[0].severity == Severity::Error);
  CHECK(items[0].message == "data newer than server");
  CHECK(items[0].resolutions == std::vector<std::string>{"dump-restore", "restore-backup"});
  CHECK(items[0].default_resolution == "dump-restore");
  CHECK(blocks(items[0], false));
  CHECK_FALSE(blocks(items[0], true));
  CHECK(items_of_run(pg_check(), exited(0, "")).empty());
  // The last line needs no newline; warnings and recommendations never block.
  auto two = items_of_run(pg_check(),
                          exited(0, R"({"id":"w","severity":"warning","message":"a"})"
                                    "\n"
                                    R"({"id":"r","severity":"recommendation","message":"b"})"));
  REQUIRE(two.size() == 2);
  CHECK_FALSE(blocks(two[0], false));
  CHECK_FALSE(blocks(two[1], false));
}

TEST_CASE("a check that fails, crashes or times out is an error item, even with items") {
  check_failed(exited(1, ""), "check \"pg\" failed: exit status 1");
  check_failed(exited(3, kLine), "exit status 3");
  ProcessResult crashed;
  crashed.started = true;
  crashed.signal = 11;
  crashed.message = "killed by signal 11";
  check_failed(crashed, "killed by signal 11");
  ProcessResult late;
  late.started = true;
  late.timed_out = true;
  late.message = "timed out after 120 s";
  check_failed(late, "timed out after 120 s");
  ProcessResult missing;
  missing.message = "cannot execute /bin/check: No such file or directory";
  check_failed(missing, "cannot execute /bin/check");
  check_failed(ProcessResult{}, "it did not run");
}

TEST_CASE("garbage output is an error item naming the line and what is wrong") {
  check_failed(exited(0, "all good\n"), "line 1");
  check_failed(exited(0, kLine + "\n{\"id\":"), "line 2");
  check_failed(exited(0, "[1,2]"), "line 1");
  check_failed(exited(0, R"({"id":"X Y","severity":"error","message":"m"})"), "invalid id");
  check_failed(exited(0, R"({"id":"a","severity":"fatal","message":"m"})"),
               "unknown severity \"fatal\"");
  check_failed(exited(0, R"({"id":"a","severity":"error"})"), "message");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":""})"), "must not be empty");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":"m","extra":1})"), "extra");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":"m","resolutions":["nuke"]})"),
               "\"nuke\" is not a resolution check \"pg\" declares");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":"m",)"
                         R"("resolutions":["dump-restore","dump-restore"]})"),
               "named twice");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":"m",)"
                         R"("resolutions":["dump-restore"],"default":"restore-backup"})"),
               "not one of the item's resolutions");
  check_failed(exited(0, kLine + "\n" + kLine), "reported twice");
  // Invalid UTF-8 and NUL bytes in a string.
  check_failed(exited(0, "{\"id\":\"a\",\"severity\":\"error\",\"message\":\"caf\xc3\"}"),
               "not valid UTF-8");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":"a\u0000b"})"), "NUL");
  // Too much: output, items, a message.
  check_failed(exited(0, std::string(kMaxCheckOutputBytes + 1, '\n')), "more than");
  std::string many;
  for (std::size_t i = 0; i <= kMaxItemsPerCheck; ++i) {
    many += fmt::format(R"({{"id":"i{}","severity":"warning","message":"m"}})", i) + "\n";
  }
  check_failed(exited(0, many), "more than 64 items");
  check_failed(exited(0, R"({"id":"a","severity":"error","message":")" +
                             std::string(kMaxItemMessageBytes + 1, 'x') + "\"}"),
               "longer than");
  // A deeply nested line is refused by the JSON limits, not a stack overflow.
  check_failed(exited(0, std::string(100000, '[')), "line 1");
}

TEST_CASE("the message of a failed check is bounded") {
  ProcessResult result = exited(1, "");
  result.message = std::string(10000, 'x');
  auto items = items_of_run(pg_check(), result);
  REQUIRE(items.size() == 1);
  CHECK(items[0].message.size() <= kMaxItemMessageBytes);
}

TEST_CASE("run_checks runs the checks of one phase, or all, in plan order") {
  Plan plan;
  for (auto [id, phase] :
       {std::pair{"a", Phase::PostActivation}, std::pair{"b", Phase::InitrdPreMount}}) {
    Check check;
    check.id = id;
    check.phase = phase;
    check.argv = {"/bin/x"};
    plan.checks.push_back(check);
  }
  FakeRunner runner;
  auto all = run_checks(plan, std::nullopt, runner, {});
  CHECK(runner.ran == std::vector<std::string>{"a@post-activation", "b@initrd-pre-mount"});
  REQUIRE(all.size() == 1);
  CHECK(all[0].check == "a");
  runner.ran.clear();
  auto initrd = run_checks(plan, Phase::InitrdPreMount, runner, {});
  CHECK(runner.ran == std::vector<std::string>{"b@initrd-pre-mount"});
  CHECK(initrd.empty());
}

// ---------------------------------------------------------------------------------------------
// Items and choices in the state (core/choices.hpp) and their encoding.

#include "core/choices.hpp"
#include "core/state_codec.hpp"

TEST_CASE("items and choices survive the codec; without them the payload has neither key") {
  State state;
  CHECK(encode_state(state).find("items") == std::string::npos);
  CHECK(encode_state(state).find("choices") == std::string::npos);
  ItemRecord item{
      "pg-15-to-14",   "pg", "error", "newer data", {{"dump-restore", "dump"}}, "dump-restore",
      "/nix/store/g2", 4,    99};
  state.items.push_back(item);
  state.choices.push_back({"pg-15-to-14", "pg", "dump-restore", 100, "/nix/store/g2"});
  auto decoded = decode_state(encode_state(state));
  REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
  REQUIRE(decoded->items.size() == 1);
  CHECK(decoded->items[0].resolutions[0].description == "dump");
  CHECK(decoded->items[0].attempt == 4);
  REQUIRE(decoded->choices.size() == 1);
  CHECK(decoded->choices[0].generation == "/nix/store/g2");
}

TEST_CASE("choose: unknown item, undeclared resolution, ambiguous id, plan change; clear") {
  Plan plan;
  plan.generation = "/nix/store/g2";
  plan.checks.push_back(pg_check());
  std::vector<ItemRecord> items =
      item_records(items_of_run(pg_check(), exited(0, kLine)), plan, plan.generation, 1, 5);
  REQUIRE(items.size() == 1);
  State state;
  auto unknown = choose_resolution(state, items, &plan, "nope", "dump-restore", 9);
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().message.find("unknown item \"nope\"") != std::string::npos);
  auto undeclared = choose_resolution(state, items, &plan, "pg-15-to-14", "nuke", 9);
  REQUIRE_FALSE(undeclared.has_value());
  CHECK(undeclared.error().message.find("it offers: dump-restore, restore-backup") !=
        std::string::npos);
  // The plan changed: its check no longer declares restore-backup.
  Plan changed = plan;
  changed.checks[0].resolutions.pop_back();
  auto gone = choose_resolution(state, items, &changed, "pg-15-to-14", "restore-backup", 9);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().message.find("no longer in the plan") != std::string::npos);
  // Two checks reporting the same id: CHECK/ITEM tells them apart.
  std::vector<ItemRecord> both = items;
  both.push_back(items[0]);
  both.back().check = "other";
  auto ambiguous = choose_resolution(state, both, &plan, "pg-15-to-14", "dump-restore", 9);
  REQUIRE_FALSE(ambiguous.has_value());
  CHECK(ambiguous.error().message.find("pg/pg-15-to-14") != std::string::npos);
  auto chosen = choose_resolution(state, both, &plan, "pg/pg-15-to-14", "dump-restore", 9);
  REQUIRE_MESSAGE(chosen.has_value(), chosen.error().message);
  REQUIRE(chosen->choices.size() == 1);
  // The plan of that generation gets the migration; another generation's does not.
  auto expanded = plan_with_choices(plan, *chosen, "/nix/store/g2");
  REQUIRE(expanded.has_value());
  Plan other = plan;
  CHECK_FALSE(plan_with_choices(other, *chosen, "/nix/store/g3").has_value());
  Plan no_checks;
  CHECK_FALSE(plan_with_choices(no_checks, *chosen, "/nix/store/g2").has_value());
  auto views = item_views(chosen->items, *chosen);
  REQUIRE(views.size() == 1);
  CHECK(views[0].state == ItemState::Chosen);
  CHECK_FALSE(views[0].blocker);
  auto cleared = clear_choice(*chosen, "pg-15-to-14");
  REQUIRE(cleared.has_value());
  CHECK(cleared->choices.empty());
  CHECK_FALSE(clear_choice(*cleared, "pg-15-to-14").has_value());
}

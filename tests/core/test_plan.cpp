// Plan validation: every rejection rule of docs/DESIGN.md "Plan", each with the JSON path the
// message must name.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/plan_rules.hpp"

using namespace bootstate;

namespace {

const char* const kGeneration = "/nix/store/aaaa-nixos-system-test";

// A valid plan with one migration `m` whose single step's JSON is `step`.
std::string plan_with_step(const std::string& step, const std::string& migration_extra = "") {
  return std::string(R"({"schema":1,"generation":")") + kGeneration +
         R"(","migrations":[{"id":"m","policy":"required")" + migration_extra + R"(,"steps":[)" +
         step + "]}]}";
}

const std::string kCommandStep =
    R"({"id":"s","phase":"post-activation","kind":"command","command":["/bin/true"]})";

std::string rejection(const std::string& json) {
  auto plan = parse_plan(json, "plan.json");
  REQUIRE_MESSAGE(!plan.has_value(), "plan was accepted: " << json);
  CHECK(plan.error().code == ErrorCode::InvalidInput);
  return plan.error().message;
}

void check_rejected(const std::string& json, const std::string& expected_fragment) {
  std::string message = rejection(json);
  CHECK_MESSAGE(message.find(expected_fragment) != std::string::npos,
                "message \"" << message << "\" lacks \"" << expected_fragment << "\"");
}

}  // namespace

TEST_CASE("a complete plan is accepted with every field") {
  std::string json = std::string(R"({"schema":1,"generation":")") + kGeneration + R"(",
    "migrations":[
      {"id":"fw","policy":"recommended","steps":[{"id":"flash","phase":"post-activation",
        "kind":"firmware","device":"abc","cabinet":"/nix/store/x.cab","version":"1.2.4",
        "allow-older":true}]},
      {"id":"db.v2","description":"upgrade","policy":"required","after":["fw"],
       "backup":["/var/lib/db"],"keep":false,
       "steps":[
         {"id":"one","phase":"pre-switch-root","kind":"command","command":["/bin/a","x"],
          "check":["/bin/c"],"environment":{"A":"1"},"timeout":30,"reboot":true,
          "idempotent":true,"preview":"does a"},
         {"id":"two","phase":"post-activation","kind":"command","command":["/bin/b"]}],
       "undo":[{"id":"u","phase":"post-activation","kind":"command","command":["/bin/u"]}]},
      {"id":"disk","policy":"optional","steps":[{"id":"grow","phase":"initrd-pre-mount",
        "kind":"storage","operations":[
          {"op":"grow-partition","disk":"/dev/vda","partition":"PARTLABEL=root","size":"max"},
          {"op":"add-partition","disk":"/dev/vda","name":"srv","type":"linux","size":"2G",
           "uuid":"0fc63daf-8483-4772-8e79-3d69d8477de4","allow-destroy":true},
          {"op":"set-partition-attrs","disk":"/dev/vda","partition":"2","attrs":["no-auto",63]},
          {"op":"require","device":"PARTLABEL=root","fstype":"ext4","min-size":"1G"}]}]}
    ]})";
  auto plan = parse_plan(json, "plan.json");
  REQUIRE_MESSAGE(plan.has_value(), plan.error().message);
  REQUIRE(plan->migrations.size() == 3);
  const Migration& db = plan->migrations[1];
  CHECK(db.policy == Policy::Required);
  CHECK(db.after == std::vector<std::string>{"fw"});
  CHECK(db.steps[0].phase == Phase::PreSwitchRoot);
  CHECK(db.steps[0].timeout_seconds == 30);
  CHECK(db.steps[0].reboot);
  CHECK(db.steps[0].command.environment.at("A") == "1");
  CHECK(db.steps[1].timeout_seconds == 600);
  CHECK(db.undo.size() == 1);
  CHECK(plan->migrations[0].kept_when_stale());
  CHECK(plan->migrations[2].steps[0].storage.size() == 4);
  CHECK(plan->migrations[2].steps[0].storage[2].attrs == std::vector<std::string>{"no-auto", "63"});
  CHECK(!db.digest.empty());
  CHECK(db.digest != plan->migrations[0].digest);

  SUBCASE("a recorded definition parses back to the same digest") {
    auto again = parse_migration_definition(db.definition_json);
    REQUIRE(again.has_value());
    CHECK(again->digest == db.digest);
    CHECK(again->steps.size() == 2);
  }
}

TEST_CASE("the plan digest is the digest of the compact migrations text") {
  auto plan = parse_plan(plan_with_step(kCommandStep, R"(,"description":"a b")"), "p");
  REQUIRE(plan);
  std::string compact = std::string(R"([{"id":"m","policy":"required","description":"a b",)") +
                        R"("steps":[)" + kCommandStep + "]}]";
  CHECK(plan->digest == text_digest(compact));
}

TEST_CASE("the digest ignores whitespace but not content") {
  auto a = parse_plan(plan_with_step(kCommandStep), "a");
  auto b = parse_plan(" \n" + plan_with_step(kCommandStep) + "\n", "b");
  auto c = parse_plan(plan_with_step(kCommandStep, R"(,"description":"x")"), "c");
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(a->digest == b->digest);
  CHECK(a->migrations[0].digest == b->migrations[0].digest);
  CHECK(a->migrations[0].digest != c->migrations[0].digest);
}

TEST_CASE("malformed JSON names the file, line and column") {
  check_rejected("{\"schema\":1,\n \"generation\": }", "plan.json:2:");
  check_rejected("", "not valid JSON");
  check_rejected(plan_with_step(kCommandStep) + " trailing", "not valid JSON");
}

TEST_CASE("top-level rules") {
  check_rejected("[]", "expected an object");
  check_rejected(R"({"schema":2,"generation":"/x","migrations":[]})",
                 "schema: unsupported schema 2");
  check_rejected(R"({"schema":"1","generation":"/x","migrations":[]})",
                 "schema: expected an integer");
  check_rejected(R"({"generation":"/x","migrations":[]})", "schema: missing");
  check_rejected(R"({"schema":1,"migrations":[]})", "generation: missing");
  check_rejected(R"({"schema":1,"generation":"rel","migrations":[]})",
                 "generation: must be an absolute");
  check_rejected(R"({"schema":1,"generation":"/x"})", "migrations: missing");
  check_rejected(R"({"schema":1,"generation":"/x","migrations":{}})",
                 "migrations: expected an array");
  check_rejected(R"({"schema":1,"generation":"/x","migrations":[],"extra":1})",
                 "extra: unknown key");
  check_rejected(R"({"schema":1,"schema":1,"generation":"/x","migrations":[]})",
                 "schema: duplicate key");
}

TEST_CASE("migration rules") {
  auto with_migration = [](const std::string& migration) {
    return std::string(R"({"schema":1,"generation":"/x","migrations":[)") + migration + "]}";
  };
  std::string steps = R"("steps":[)" + kCommandStep + "]";
  check_rejected(with_migration(R"({"policy":"required",)" + steps + "}"),
                 "migrations[0].id: missing");
  check_rejected(with_migration(R"({"id":"Bad","policy":"required",)" + steps + "}"),
                 "migrations[0].id: invalid id \"Bad\"");
  check_rejected(with_migration(R"({"id":")" + std::string(65, 'a') + R"(","policy":"required",)" +
                                steps + "}"),
                 "migrations[0].id: invalid id");
  check_rejected(with_migration(R"({"id":"m",)" + steps + "}"), "migrations[0].policy: missing");
  check_rejected(with_migration(R"({"id":"m","policy":"maybe",)" + steps + "}"),
                 "migrations[0].policy: unknown policy \"maybe\"");
  check_rejected(with_migration(R"({"id":"m","policy":"required","steps":[]})"),
                 "migrations[0].steps: must be a non-empty array");
  check_rejected(with_migration(R"({"id":"m","policy":"required","colour":1,)" + steps + "}"),
                 "migrations[0].colour: unknown key");
  check_rejected(with_migration(R"({"id":"m","policy":"required","keep":"yes",)" + steps + "}"),
                 "migrations[0].keep: expected a boolean");
  check_rejected(with_migration(R"({"id":"m","policy":"required","backup":["var"],)" + steps + "}"),
                 "migrations[0].backup[0]: \"var\" is not an absolute path");
  check_rejected(
      with_migration(
          R"({"id":"m","policy":"required","backup":["/var"],"steps":[)"
          R"({"id":"s","phase":"initrd-pre-mount","kind":"command","command":["/bin/x"]}]})"),
      "migrations[0].backup: the first step (\"s\") runs in initrd-pre-mount");
}

TEST_CASE("cross-migration rules: duplicate ids, unknown after, cycles") {
  std::string steps = R"("steps":[)" + kCommandStep + "]";
  auto migration = [&](const std::string& id, const std::string& after) {
    return R"({"id":")" + id + R"(","policy":"required","after":[)" + after + "]," + steps + "}";
  };
  auto plan = [](const std::string& migrations) {
    return std::string(R"({"schema":1,"generation":"/x","migrations":[)") + migrations + "]}";
  };
  check_rejected(plan(migration("a", "") + "," + migration("a", "")),
                 "migrations[1].id: duplicate migration id \"a\"");
  check_rejected(plan(migration("a", R"("zz")")),
                 "migrations[0].after[0]: unknown migration \"zz\"");
  check_rejected(plan(migration("a", R"("a")")),
                 "migrations[0].after[0]: a migration cannot follow itself");
  check_rejected(plan(migration("a", R"("c")") + "," + migration("b", R"("a")") + "," +
                      migration("c", R"("b")")),
                 "dependency cycle a → c → b → a");
  CHECK(parse_plan(plan(migration("a", "") + "," + migration("b", R"("a")")), "p").has_value());
}

TEST_CASE("step rules") {
  auto step = [](const std::string& fields) { return plan_with_step("{" + fields + "}"); };
  const std::string base = R"("id":"s","kind":"command","command":["/bin/true"])";
  check_rejected(step(base + R"(,"phase":"pre-mount")"),
                 "plan.json: migrations[0].steps[0].phase: unknown phase \"pre-mount\"");
  check_rejected(step(base), "migrations[0].steps[0].phase: missing");
  check_rejected(step(R"("id":"s","phase":"post-activation","kind":"script","command":["/bin/x"])"),
                 "migrations[0].steps[0].kind: unknown kind \"script\"");
  check_rejected(step(R"("id":"s","phase":"post-activation","kind":"command","command":["true"])"),
                 "migrations[0].steps[0].command[0]: \"true\" is not an absolute path");
  check_rejected(step(R"("id":"s","phase":"post-activation","kind":"command","command":[])"),
                 "migrations[0].steps[0].command: must be a non-empty array");
  check_rejected(step(R"("id":"s","phase":"post-activation","kind":"command","command":"/bin/x")"),
                 "migrations[0].steps[0].command: expected an array");
  check_rejected(
      step(R"("id":"s","phase":"post-activation","kind":"command","command":["/bin/x",1])"),
      "migrations[0].steps[0].command[1]: expected a string");
  check_rejected(step(base + R"(,"phase":"post-activation","check":["rel"])"),
                 "migrations[0].steps[0].check[0]: \"rel\" is not an absolute path");
  check_rejected(step(base + R"(,"phase":"post-activation","timeout":0)"),
                 "migrations[0].steps[0].timeout: must be between");
  check_rejected(step(base + R"(,"phase":"post-activation","timeout":1.5)"),
                 "migrations[0].steps[0].timeout: expected an integer");
  check_rejected(step(base + R"(,"phase":"post-activation","reboot":1)"),
                 "migrations[0].steps[0].reboot: expected a boolean");
  check_rejected(step(base + R"(,"phase":"post-activation","environment":{"1X":"a"})"),
                 "migrations[0].steps[0].environment.1X: invalid variable name");
  check_rejected(step(base + R"(,"phase":"post-activation","environment":{"BOOTSTATE_STEP":"a"})"),
                 "BOOTSTATE_* variables are set by bootstate");
  check_rejected(step(base + R"(,"phase":"post-activation","environment":{"A":1})"),
                 "migrations[0].steps[0].environment.A: expected a string");
  check_rejected(step(base + R"(,"phase":"post-activation","device":"x")"),
                 "migrations[0].steps[0].device: unknown key");
  check_rejected(plan_with_step(kCommandStep + "," + kCommandStep),
                 "migrations[0].steps[1].id: duplicate step id \"s\"");
}

TEST_CASE("a kind in a phase where it cannot run is rejected") {
  check_rejected(
      plan_with_step(R"({"id":"f","phase":"initrd-pre-mount","kind":"firmware",)"
                     R"("device":"d","cabinet":"/c.cab","version":"1"})"),
      "migrations[0].steps[0].phase: a firmware step cannot run in phase \"initrd-pre-mount\"");
  check_rejected(
      plan_with_step(R"({"id":"g","phase":"post-activation","kind":"storage",)"
                     R"("operations":[{"op":"require","device":"/dev/vda"}]})"),
      "migrations[0].steps[0].phase: a storage step cannot run in phase \"post-activation\"");
}

TEST_CASE("firmware step rules") {
  auto firmware = [](const std::string& fields) {
    return plan_with_step(R"({"id":"f","phase":"post-activation","kind":"firmware",)" + fields +
                          "}");
  };
  check_rejected(firmware(R"("cabinet":"/c.cab","version":"1")"), "steps[0].device: missing");
  check_rejected(firmware(R"("device":"d","cabinet":"c.cab","version":"1")"),
                 "steps[0].cabinet: \"c.cab\" is not an absolute path");
  check_rejected(firmware(R"("device":"d","cabinet":"/c.cab")"), "steps[0].version: missing");
  check_rejected(firmware(R"("device":"d","cabinet":"/c.cab","version":"1","command":["/x"])"),
                 "steps[0].command: unknown key");
}

TEST_CASE("storage operation rules") {
  auto storage = [](const std::string& operation) {
    return plan_with_step(
        R"({"id":"g","phase":"initrd-pre-mount","kind":"storage","operations":[)" + operation +
        "]}");
  };
  const std::string at = "migrations[0].steps[0].operations[0].";
  check_rejected(storage(R"({"op":"shrink"})"), at + "op: unknown operation \"shrink\"");
  check_rejected(storage(R"({"op":"grow-partition","disk":"/dev/vda","size":"max"})"),
                 at + "partition: missing (required by grow-partition)");
  check_rejected(storage(R"({"op":"grow-partition","disk":"vda","partition":"1","size":"max"})"),
                 at + "disk: \"vda\" is not an absolute device path");
  check_rejected(
      storage(R"({"op":"grow-partition","disk":"/dev/vda","partition":"root","size":"max"})"),
      at + "partition: \"root\" is not PARTLABEL=");
  check_rejected(
      storage(R"({"op":"grow-partition","disk":"/dev/vda","partition":"1","size":"12X"})"),
      at + "size: \"12X\" is not a size");
  check_rejected(
      storage(
          R"({"op":"grow-partition","disk":"/dev/vda","partition":"1","size":"max","name":"x"})"),
      at + "name: unknown key");
  check_rejected(
      storage(
          R"({"op":"add-partition","disk":"/dev/vda","name":"x","type":"linux","size":"1G","uuid":"nope"})"),
      at + "uuid: \"nope\" is not a GUID");
  check_rejected(
      storage(R"({"op":"set-partition-attrs","disk":"/dev/vda","partition":"1","attrs":[]})"),
      at + "attrs: expected a non-empty array");
  check_rejected(storage(R"({"op":"require","device":"/dev/vda","min-size":"max"})"),
                 at + "min-size: \"max\" is not allowed here");
  check_rejected(storage(R"({"op":"require","device":"/dev/vda","allow-destroy":"yes"})"),
                 at + "allow-destroy: expected a boolean");
  check_rejected(
      plan_with_step(R"({"id":"g","phase":"initrd-pre-mount","kind":"storage","operations":[]})"),
      "migrations[0].steps[0].operations: must be a non-empty array");
}

TEST_CASE("sizes are powers of 1024") {
  CHECK(*parse_plan_size("512", false) == 512);
  CHECK(*parse_plan_size("512M", false) == 512ULL << 20);
  CHECK(*parse_plan_size("20G", true) == 20ULL << 30);
  CHECK(*parse_plan_size("1T", true) == 1ULL << 40);
  CHECK(*parse_plan_size("max", true) == 0);
  CHECK(!parse_plan_size("0", true));
  CHECK(!parse_plan_size("1.5G", true));
  CHECK(!parse_plan_size("-1", true));
  CHECK(!parse_plan_size("", true));
  CHECK(!parse_plan_size("G", true));
  CHECK(!parse_plan_size("1GG", true));
  CHECK(!parse_plan_size("max", false));
  CHECK(*parse_plan_size("999999999999999", false) == 999999999999999ULL);
  CHECK(!parse_plan_size("1000000000000000", false));  // 16 digits
  CHECK(*parse_plan_size("16777215T", false) == 16777215ULL << 40);
  CHECK(parse_plan_size("16777216T", false).error().message.find("too large") != std::string::npos);
}

TEST_CASE("partition references: PARTLABEL=, PARTUUID=<guid>, or a number 1-9999") {
  auto grow = [](const std::string& partition) {
    return parse_plan(plan_with_step(R"({"id":"g","phase":"initrd-pre-mount","kind":"storage",)"
                                     R"("operations":[{"op":"grow-partition","disk":"/dev/vda",)"
                                     R"("partition":")" +
                                     partition + R"(","size":"max"}]})"),
                      "p")
        .has_value();
  };
  CHECK(grow("1"));
  CHECK(grow("9999"));
  CHECK(grow("PARTLABEL=root"));
  CHECK(grow("PARTUUID=0FC63DAF-8483-4772-8e79-3d69d8477de4"));
  CHECK_FALSE(grow("0"));
  CHECK_FALSE(grow("01"));
  CHECK_FALSE(grow("10000"));
  CHECK_FALSE(grow("1a"));
  CHECK_FALSE(grow("PARTLABEL="));
  CHECK_FALSE(grow("PARTUUID=0FC63DAF-8483-4772-8e79-3d69d8477de"));
  CHECK_FALSE(grow("PARTUUID=0FC63DAF-8483-4772-8e79_3d69d8477de4"));
  CHECK_FALSE(grow("PARTUUID=0FC63DAG-8483-4772-8e79-3d69d8477de4"));
}

// ---- issue #13: input that crashed the parser, and input it accepted but must not ----

namespace {

// A plan of `count` migrations where each (but the last) is `after` the next: the longest
// possible dependency chain.
std::string after_chain(std::size_t count, bool close_cycle) {
  std::string json =
      std::string(R"({"schema":1,"generation":")") + kGeneration + R"(","migrations":[)";
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) json += ',';
    json += R"({"id":"m)" + std::to_string(i) + R"(","policy":"required")";
    if (i + 1 < count) {
      json += R"(,"after":["m)" + std::to_string(i + 1) + R"("])";
    } else if (close_cycle) {
      json += R"(,"after":["m0"])";
    }
    json += R"(,"steps":[)" + kCommandStep + "]}";
  }
  return json + "]}";
}

}  // namespace

TEST_CASE("deep nesting is refused with the file and position, not a stack overflow") {
  // 130,000 nested `[` overflowed rapidjson's recursive parser (SIGSEGV) before the bound.
  const std::string deep = std::string(130000, '[') + std::string(130000, ']');
  check_rejected(deep, "plan.json:1:129: arrays and objects nested deeper than 128 levels");
  // Inside a value, in the copying parse (a NUL elsewhere), and for recorded definitions.
  check_rejected(plan_with_step(kCommandStep, R"(,"x":)" + deep), "nested deeper than 128");
  check_rejected(std::string("{\"a\":\"\0\",\"b\":", 13) + deep + "}", "nested deeper than 128");
  auto definition = parse_migration_definition(deep);
  REQUIRE_FALSE(definition.has_value());
  CHECK(definition.error().message.find("recorded definition:1:129: arrays and objects nested") !=
        std::string::npos);
  // Brackets inside strings do not count; 128 levels are fine (then the schema rules speak).
  CHECK(
      rejection(R"({"schema":1,"generation":")" + std::string(200, '[') + R"("})").find("nested") ==
      std::string::npos);
  CHECK(rejection(std::string(128, '[') + std::string(128, ']')).find("nested") ==
        std::string::npos);
}

TEST_CASE("a 100,000-long after chain is checked without recursion, and its cycle named") {
  auto chain = parse_plan(after_chain(100000, false), "plan.json");
  REQUIRE_MESSAGE(chain.has_value(), chain.error().message);
  CHECK(chain->migrations.size() == 100000);
  check_rejected(after_chain(100000, true),
                 "migrations[0].after: dependency cycle m0 → m1 → m2 "
                 "→ m3 → … (99992 more) → m99996 → m99997 → m99998 → "
                 "m99999 → m0");
  check_rejected(after_chain(3, true), "dependency cycle m0 → m1 → m2 → m0");
  check_rejected(after_chain(8, true),
                 "dependency cycle m0 → m1 → m2 → m3 → m4 → m5 → m6 → m7 → m0");
  check_rejected(after_chain(9, true),
                 "dependency cycle m0 → m1 → m2 → m3 → … (1 more) → m5 → "
                 "m6 → m7 → m8 → m0");
}

TEST_CASE("the execution order of a 100,000-long after chain is found in linear time") {
  // It was a scan of the whole plan for each migration placed: O(n²), so `status` of a plan of
  // 1,000 migrations chained by `after` took 141 s; at 100,000 this test never finished.
  auto chain = parse_plan(after_chain(100000, false), "plan.json");
  REQUIRE_MESSAGE(chain.has_value(), chain.error().message);
  const std::vector<std::size_t> order = migration_order(*chain);
  REQUIRE(order.size() == 100000);
  CHECK(order.front() == 99999);  // the end of the chain is the only one free to run
  CHECK(order.back() == 0);
  CHECK(std::is_sorted(order.rbegin(), order.rend()));
}

TEST_CASE("without after the execution order is the plan order; with it, the earliest ready") {
  const std::string step = R"(,"steps":[)" + kCommandStep + "]}";
  auto plan = parse_plan(std::string(R"({"schema":1,"generation":")") + kGeneration +
                             R"(","migrations":[{"id":"a","policy":"required","after":["c"])" +
                             step + R"(,{"id":"b","policy":"required")" + step +
                             R"(,{"id":"c","policy":"required")" + step +
                             R"(,{"id":"d","policy":"required")" + step + "]}",
                         "plan.json");
  REQUIRE_MESSAGE(plan.has_value(), plan.error().message);
  // b and c are ready first (b is earlier); a becomes ready after c and precedes d.
  CHECK(migration_order(*plan) == std::vector<std::size_t>{1, 2, 0, 3});
}

TEST_CASE("numbers with very long fractions and tiny exponents parse safely") {
  // Out of bounds in rapidjson's full-precision parser (issue #13): the plan parser never used
  // it, the state decoder did; both must read it as a number (here: in an unknown key).
  const std::string number = "530002.912" + std::string(50, '9') + "5e-400";
  check_rejected(plan_with_step(kCommandStep, R"(,"x":)" + number), "migrations[0].x: unknown key");
  // rapidjson's exponent arithmetic overflows an int after leading zeros, and then indexes its
  // power-of-ten table out of bounds (found by UBSan: index 2147483595 of double[309]).
  check_rejected(
      plan_with_step(kCommandStep, R"(,"x":0.)" + std::string(100, '0') + "1e-2147483600"),
      "plan.json:1:110: a number with an exponent of more than 4 digits");
  check_rejected(plan_with_step(kCommandStep, R"(,"x":)" + std::string(5000, '1')),
                 "a number longer than 4096 characters");
  check_rejected(R"({"schema":1e+00001})", "plan.json:1:11: a number with an exponent");
  // Inside strings, and up to the limits, numbers are what they are.
  check_rejected(R"({"schema":1e+0001,"x":"1e-2147483600"})", "plan.json: x: unknown key");
  check_rejected(R"({"schema":-1.5E-9999})", "schema: expected an integer");
}

TEST_CASE("backup paths with . .. // or control characters are refused, naming the path") {
  for (const char* path :
       {"/var/lib/../etc", "/var/lib/..", "/..", "/var/./lib", "/var//lib", "/var/lib/", "//var"}) {
    check_rejected(
        plan_with_step(kCommandStep, std::string(R"(,"backup":["/ok",")") + path + "\"]"),
        "migrations[0].backup[1]: \"" + std::string(path) + "\" has ");
  }
  check_rejected(plan_with_step(kCommandStep, R"(,"backup":["/var/lib/a\nb"])"),
                 R"(migrations[0].backup[0]: "/var/lib/a\nb" holds a control character (0x0a))");
  check_rejected(plan_with_step(kCommandStep, R"(,"backup":["/var/lib/a\u0000b"])"),
                 "migrations[0].backup[0]: contains a NUL byte (byte 10)");
  // Dots inside names are names.
  auto plan = parse_plan(plan_with_step(kCommandStep, R"(,"backup":["/var/lib/.app","/a..b/..c"])"),
                         "plan.json");
  CHECK_MESSAGE(plan.has_value(), plan.error().message);
}

TEST_CASE("a NUL in a command, check, argument or environment variable is refused") {
  auto step = [](const std::string& body) {
    return R"({"id":"s","phase":"post-activation","kind":"command",)" + body + "}";
  };
  check_rejected(plan_with_step(step(R"("command":["/bin/tr\u0000ue"])")),
                 "migrations[0].steps[0].command[0]: contains a NUL byte (byte 7)");
  check_rejected(plan_with_step(step(R"("command":["/bin/true","a\u0000b"])")),
                 "migrations[0].steps[0].command[1]: contains a NUL byte");
  check_rejected(plan_with_step(step(R"("command":["/bin/true"],"check":["/bin/c","\u0000"])")),
                 "migrations[0].steps[0].check[1]: contains a NUL byte");
  check_rejected(plan_with_step(step(R"("command":["/bin/true"],"environment":{"A":"x\u0000"})")),
                 "migrations[0].steps[0].environment.A: contains a NUL byte");
  check_rejected(plan_with_step(step(R"("command":["/bin/true"],"environment":{"A\u0000":"x"})")),
                 "migrations[0].steps[0].environment: a key contains a NUL byte");
  // A raw NUL byte (not an escape) in the text is not JSON.
  check_rejected(plan_with_step(step(std::string("\"command\":[\"/bin/t\0\"]", 21))),
                 "not valid JSON");
}

TEST_CASE("strings that are not UTF-8 are refused anywhere in a plan, with the path") {
  // Raw bytes: an overlong '/', a lone continuation byte, a surrogate, a truncated sequence.
  check_rejected(plan_with_step(kCommandStep, ",\"description\":\"caf\xc3\""),
                 "migrations[0].description: not valid UTF-8 (byte 3)");
  check_rejected(plan_with_step(kCommandStep, ",\"description\":\"\xc0\xaf\""),
                 "migrations[0].description: not valid UTF-8 (byte 0)");
  check_rejected(plan_with_step(R"({"id":"s","phase":"post-activation","kind":"command",)"
                                "\"command\":[\"/bin/true\",\"\x80\"]}"),
                 "migrations[0].steps[0].command[1]: not valid UTF-8");
  // An escaped lone low surrogate decodes to bytes that are not UTF-8.
  check_rejected(plan_with_step(kCommandStep, R"(,"description":"\udc00")"),
                 "migrations[0].description: not valid UTF-8");
  check_rejected(plan_with_step(kCommandStep, ",\"\xed\xa0\x80\":1"),
                 "migrations[0]: a key not valid UTF-8");
  // Valid multi-byte text is fine.
  auto plan = parse_plan(plan_with_step(kCommandStep, ",\"description\":\"Grüße 😀\""), "plan.json");
  CHECK_MESSAGE(plan.has_value(), plan.error().message);
}

TEST_CASE("a recorded definition with a NUL or invalid UTF-8 does not re-parse") {
  auto nul = parse_migration_definition(
      R"({"id":"m","policy":"required","steps":[{"id":"s","phase":"post-activation",)"
      R"("kind":"command","command":["/bin/true","\u0000"]}]})");
  REQUIRE_FALSE(nul.has_value());
  CHECK(nul.error().message ==
        "recorded definition: definition.steps[0].command[1]: contains a NUL byte (byte 0)");
}

// Strings are checked eight bytes at a time: a NUL or a byte that is not ASCII at every place
// of a long string, and at its short tail, is still found.
TEST_CASE("a NUL or a bad byte anywhere in a long string is found") {
  auto step = [](const std::string& argument) {
    return R"({"id":"s","phase":"post-activation","kind":"command","command":["/bin/true",")" +
           argument + R"("]})";
  };
  for (std::size_t at = 0; at < 21; ++at) {
    CAPTURE(at);
    std::string nul(21, 'x');
    nul.replace(at, 1, "\\u0000");
    check_rejected(
        plan_with_step(step(nul)),
        "migrations[0].steps[0].command[1]: contains a NUL byte (byte " + std::to_string(at) + ")");
    std::string bad(21, 'x');
    bad[at] = '\xff';
    check_rejected(
        plan_with_step(step(bad)),
        "migrations[0].steps[0].command[1]: not valid UTF-8 (byte " + std::to_string(at) + ")");
    std::string multibyte(21, 'x');
    multibyte.replace(at, 1, "\xc3\xa9");  // é: not ASCII, and valid
    auto plan = parse_plan(plan_with_step(step(multibyte)), "plan.json");
    CHECK_MESSAGE(plan.has_value(), plan.error().message);
  }
}

// `status` only shows a plan: its definition texts are digested and let go, and every digest
// is the one a full parse gives (an applied migration's changed definition is still reported).
TEST_CASE("a plan parsed without its definition texts has the same digests") {
  std::string text = R"({"schema":1,"generation":"/nix/store/g","migrations":[)";
  for (int i = 0; i < 20; ++i) {
    if (i > 0) text += ",";
    text += R"({"id":"m)" + std::to_string(i) +
            R"(","policy":"required","steps":[{"id":"s","phase":"post-activation",)"
            R"("kind":"command","command":["/bin/echo",")" +
            std::string(static_cast<std::size_t>(i), 'x') + R"("]}]})";
  }
  text += "]}";
  auto kept = parse_plan(text, "plan.json");
  auto dropped = parse_owned_plan(std::string(text), "plan.json", DefinitionTexts::Drop);
  REQUIRE(kept.has_value());
  REQUIRE(dropped.has_value());
  CHECK(dropped->digest == kept->digest);
  REQUIRE(dropped->migrations.size() == kept->migrations.size());
  for (std::size_t i = 0; i < kept->migrations.size(); ++i) {
    CHECK(dropped->migrations[i].digest == kept->migrations[i].digest);
    CHECK(dropped->migrations[i].definition_json.empty());
    CHECK_FALSE(kept->migrations[i].definition_json.empty());
  }
  auto owned = parse_owned_plan(std::string(text), "plan.json");
  REQUIRE(owned.has_value());
  CHECK(owned->migrations[3].definition_json == kept->migrations[3].definition_json);
}

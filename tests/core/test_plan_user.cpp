// `user` and `group` of command steps (docs/DESIGN.md "Steps as a user", issue 15 item 3):
// names in stage 2 only, ids anywhere, anything else refused with the JSON path.
#include <doctest/doctest.h>

#include <string>

#include "core/plan.hpp"
#include "core/plan_rules.hpp"

using namespace bootstate;

namespace {

Expected<Plan> plan_with_account(const std::string& phase, const std::string& fields) {
  return parse_plan(
      R"({"schema":1,"generation":"/nix/store/aaaa-nixos-system-test","migrations":[{"id":"m",)"
      R"("policy":"required","steps":[{"id":"s","phase":")" +
          phase + R"(","kind":"command","command":["/bin/true"])" + fields + "}]}]}",
      "plan.json");
}

std::string rejection(const std::string& phase, const std::string& fields) {
  auto plan = plan_with_account(phase, fields);
  REQUIRE_MESSAGE(!plan.has_value(), "accepted: " << fields);
  CHECK(plan.error().code == ErrorCode::InvalidInput);
  return plan.error().message;
}

}  // namespace

TEST_CASE("a step's user and group: names in stage 2, ids anywhere") {
  auto named = plan_with_account("post-activation", R"(,"user":"postgres","group":"postgres")");
  REQUIRE_MESSAGE(named.has_value(), named.error().message);
  CHECK(named->migrations[0].steps[0].command.user == "postgres");
  CHECK(named->migrations[0].steps[0].command.group == "postgres");
  auto numeric = plan_with_account("initrd-pre-mount", R"(,"user":"71","group":"0")");
  REQUIRE_MESSAGE(numeric.has_value(), numeric.error().message);
  CHECK(numeric->migrations[0].steps[0].command.user == "71");
  auto none = plan_with_account("post-activation", "");
  REQUIRE(none.has_value());
  CHECK(none->migrations[0].steps[0].command.user.empty());
  CHECK(plan_with_account("post-activation", R"(,"user":"machine$","group":"Domain_Users")"));
}

TEST_CASE("a name in an initrd phase, a bad name, or an id out of range is refused") {
  CHECK(rejection("pre-switch-root", R"(,"user":"postgres")") ==
        "plan.json: migrations[0].steps[0].user: \"postgres\": in phase pre-switch-root only a "
        "numeric id is allowed (names are resolved in stage 2; the initrd's account database is "
        "not the system's)");
  CHECK(rejection("initrd-pre-mount", R"(,"group":"disk")").find("steps[0].group: \"disk\"") !=
        std::string::npos);
  for (const char* bad :
       {"", "-rf", "a b", "root;x", "ünicode", "a/b", "abcdefghijklmnopqrstuvwxyz0123456"}) {
    CHECK(rejection("post-activation", std::string(R"(,"user":")") + bad + "\"")
              .find("is neither a user or group name nor a numeric id") != std::string::npos);
  }
  CHECK(rejection("post-activation", R"(,"user":"4294967295")")
            .find("a numeric id must be between 0 and 4294967294") != std::string::npos);
  CHECK(rejection("post-activation", R"(,"user":"99999999999")").find("between 0 and 4294967294") !=
        std::string::npos);
  CHECK(rejection("post-activation", R"(,"user":7)").find("steps[0].user") != std::string::npos);
}

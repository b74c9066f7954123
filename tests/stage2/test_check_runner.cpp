// Real check processes through ProcessCheckRunner and PosixProcessRunner: argv without a shell,
// the clean environment, the timeout, the stdout bound, and what each outcome becomes.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "stage2/check_runner.hpp"
#include "stage2/process_runner.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::TempDir;

namespace {

// An executable script at DIR/name (run through its #! line by the kernel, not by bootstate).
std::string script(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir / name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
  return path;
}

struct Fixture {
  Fixture() {
    check.id = "probe";
    check.phase = Phase::PostActivation;
    CheckResolution fix;
    fix.id = "fix";
    check.resolutions.push_back(fix);
    context.generation = "/nix/store/g";
    context.root = "/";
    context.attempt = 3;
  }
  std::vector<CheckItem> run(const std::string& body, std::uint32_t timeout = 30) {
    check.argv = {script(dir, "check", body)};
    check.timeout_seconds = timeout;
    PosixProcessRunner::Options options;
    options.kill_grace = std::chrono::milliseconds(200);
    PosixProcessRunner processes(options);
    ProcessCheckRunner runner(processes);
    return items_of_run(check, runner.run(check, context));
  }
  TempDir dir;
  Check check;
  CheckRunContext context;
};

}  // namespace

TEST_CASE("a real check's item lines are read from its stdout, not its stderr") {
  Fixture fixture;
  auto items = fixture.run(
      "echo 'noise on stderr' >&2\n"
      R"(echo '{"id":"found","severity":"warning","message":"m","resolutions":["fix"]}')"
      "\n");
  REQUIRE(items.size() == 1);
  CHECK(items[0].id == "found");
  CHECK(items[0].severity == Severity::Warning);
  CHECK(items[0].resolutions == std::vector<std::string>{"fix"});
  CHECK(fixture.run("exit 0\n").empty());
}

TEST_CASE("a real check gets the clean environment and its phase") {
  Fixture fixture;
  auto items = fixture.run(
      R"(printf '{"id":"env","severity":"warning","message":"%s %s %s %s %s"}\n' )"
      R"("$BOOTSTATE_CHECK" "$BOOTSTATE_PHASE" "$BOOTSTATE_GENERATION" "$BOOTSTATE_ATTEMPT" )"
      R"("${SECRET:-clean}")"
      "\n");
  REQUIRE(items.size() == 1);
  CHECK(items[0].message == "probe post-activation /nix/store/g 3 clean");
}

TEST_CASE("a real check that exits 1, crashes, hangs or floods stdout is an error item") {
  Fixture fixture;
  auto failed = fixture.run("exit 1\n");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].id == "check-failed");
  CHECK(failed[0].message == "check \"probe\" failed: exit status 1");
  auto crashed = fixture.run("kill -SEGV $$\n");
  REQUIRE(crashed.size() == 1);
  CHECK(crashed[0].message.find("signal") != std::string::npos);
  auto hung = fixture.run("sleep 30\n", 1);
  REQUIRE(hung.size() == 1);
  CHECK(hung[0].message.find("timed out") != std::string::npos);
  auto flood = fixture.run("head -c 10000000 /dev/zero | tr '\\0' '\\n'\n");
  REQUIRE(flood.size() == 1);
  CHECK(flood[0].message.find("more than 262144 bytes") != std::string::npos);
  auto garbage = fixture.run("head -c 300 /dev/urandom\n");
  REQUIRE(garbage.size() == 1);
  CHECK(garbage[0].id == "check-failed");
}

TEST_CASE("a check that does not exist is an error item naming it") {
  Fixture fixture;
  fixture.check.argv = {fixture.dir / "missing"};
  PosixProcessRunner processes;
  ProcessCheckRunner runner(processes);
  auto items = items_of_run(fixture.check, runner.run(fixture.check, fixture.context));
  REQUIRE(items.size() == 1);
  CHECK(items[0].message.find(fixture.dir / "missing") != std::string::npos);
}

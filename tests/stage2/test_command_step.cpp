// CommandStepExecutor: the exact environment a command step gets, what it hands the runner,
// run/check/revert/describe results, and real runs through PosixProcessRunner.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "stage2/command_step.hpp"
#include "stage2/process_runner.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::read_text;
using bootstate::test::TempDir;
using bootstate::test::write_text;

namespace {

// Records the specs it is given and answers with a prepared result.
class RecordingRunner : public ProcessRunner {
 public:
  ProcessResult run(const ProcessSpec& spec) override {
    specs.push_back(spec);
    return result;
  }
  std::vector<ProcessSpec> specs;
  ProcessResult result;
};

struct Fixture {
  Fixture() {
    migration.id = "pg-upgrade";
    step.id = "dump";
    step.kind = StepKind::Command;
    step.timeout_seconds = 60;
    step.command.argv = {"/usr/bin/env"};
    context.phase = Phase::PostActivation;
    context.migration = &migration;
    context.step = &step;
    context.attempt = 7;
    context.generation = "/nix/store/abc-nixos-system";
    context.root = "/";
    context.work_dir = dir.path();
    context.log_path = dir / "step.log";
  }
  TempDir dir;
  Migration migration;
  Step step;
  StepContext context;
};

std::vector<std::string> expected_environment(const Fixture& f,
                                              const std::vector<std::string>& middle = {}) {
  std::vector<std::string> environment = {std::string("PATH=") + kStepPath, "LANG=C.UTF-8",
                                          "HOME=" + f.dir.path()};
  environment.insert(environment.end(), middle.begin(), middle.end());
  std::vector<std::string> tail = {"BOOTSTATE_PHASE=post-activation",
                                   "BOOTSTATE_MIGRATION=pg-upgrade",
                                   "BOOTSTATE_STEP=dump",
                                   "BOOTSTATE_ATTEMPT=7",
                                   "BOOTSTATE_GENERATION=/nix/store/abc-nixos-system",
                                   "BOOTSTATE_ROOT=/",
                                   "BOOTSTATE_WORK_DIR=" + f.dir.path(),
                                   "BOOTSTATE_PROGRESS=" + f.dir.path() + "/progress",
                                   "BOOTSTATE_ITEMS=" + f.dir.path() + "/items"};
  environment.insert(environment.end(), tail.begin(), tail.end());
  return environment;
}

std::string lines_of(const std::vector<std::string>& environment) {
  std::string text;
  for (const auto& entry : environment) text += entry + "\n";
  return text;
}

}  // namespace

TEST_CASE("step_environment: clean base, the step's variables, then BOOTSTATE_*") {
  Fixture f;
  CHECK(step_environment(f.context) == expected_environment(f));

  f.step.command.environment = {
      {"PGDATA", "/var/lib/postgresql"}, {"LANG", "de_DE.UTF-8"}, {"BOOTSTATE_STEP", "forged"}};
  auto environment = step_environment(f.context);
  auto expected = expected_environment(f, {"PGDATA=/var/lib/postgresql"});
  expected[1] = "LANG=de_DE.UTF-8";  // the step may replace the base variables in place
  CHECK(environment == expected);    // but not BOOTSTATE_*
}

TEST_CASE("run hands the runner argv, environment, timeout, log and journal identifier") {
  Fixture f;
  RecordingRunner runner;
  runner.result.started = true;
  runner.result.exit_status = 3;
  runner.result.message = "exit status 3";
  CommandStepExecutor executor(runner);
  StepOutcome outcome = executor.run(f.context);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.exit_status == 3);
  CHECK(outcome.message == "exit status 3");
  REQUIRE(runner.specs.size() == 1);
  const ProcessSpec& spec = runner.specs[0];
  CHECK(spec.argv == std::vector<std::string>{"/usr/bin/env"});
  CHECK(spec.environment == expected_environment(f));
  CHECK(spec.work_dir == f.dir.path());
  CHECK(spec.timeout_seconds == 60);
  CHECK(spec.log_path == f.context.log_path);
  CHECK(spec.journal_identifier == "bootstate-pg-upgrade-dump");
  CHECK_FALSE(spec.capture_stdout);
}

TEST_CASE("a real run: the command sees exactly the step environment") {
  Fixture f;
  PosixProcessRunner runner;
  CommandStepExecutor executor(runner);
  StepOutcome outcome = executor.run(f.context);
  CHECK(outcome.ok);
  CHECK(outcome.exit_status == 0);
  CHECK(outcome.message == "exit status 0");
  CHECK(read_text(f.context.log_path) == lines_of(expected_environment(f)));
}

TEST_CASE("$BOOTSTATE_ITEMS: an earlier run's report is removed, this run's is read, no link") {
  Fixture f;
  PosixProcessRunner runner;
  CommandStepExecutor executor(runner);
  const std::string items = f.dir / "items";
  write_text(items, "{\"id\": \"old\", \"severity\": \"error\", \"message\": \"stale\"}\n");
  f.step.command.argv = {"/bin/true"};
  StepOutcome quiet = executor.run(f.context);
  CHECK(quiet.ok);
  CHECK(quiet.reported_items.empty());
  CHECK(quiet.reported_items_error.empty());

  // The step writes its report (argv only, no shell: cp from a file prepared beforehand).
  write_text(f.dir / "report",
             "{\"id\": \"new\", \"severity\": \"warning\", \"message\": \"m\"}\n");
  f.step.command.argv = {"/bin/cp", f.dir / "report", items};
  StepOutcome reported = executor.run(f.context);
  CHECK(reported.ok);
  CHECK(reported.reported_items == read_text(f.dir / "report"));

  // A link in its place is not followed (the work directory may be a less trusted user's).
  f.step.command.argv = {"/bin/ln", "-s", f.dir / "report", items};
  StepOutcome linked = executor.run(f.context);
  CHECK(linked.reported_items.empty());
  CHECK(linked.reported_items_error.find(items) != std::string::npos);
}

TEST_CASE("a real run that fails or times out") {
  Fixture f;
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(200);
  PosixProcessRunner runner(options);
  CommandStepExecutor executor(runner);
  f.step.command.argv = {"/bin/sh", "-c", "echo failing; exit 4"};
  StepOutcome failed = executor.run(f.context);
  CHECK_FALSE(failed.ok);
  CHECK(failed.exit_status == 4);
  CHECK(failed.message == "exit status 4");
  CHECK(read_text(f.context.log_path) == "failing\n");

  f.step.command.argv = {"/bin/sleep", "100"};
  f.step.timeout_seconds = 1;
  StepOutcome timed_out = executor.run(f.context);
  CHECK_FALSE(timed_out.ok);
  CHECK(timed_out.message == "timed out after 1 s");

  f.step.command.argv = {"/nonexistent/migrate"};
  StepOutcome missing = executor.run(f.context);
  CHECK_FALSE(missing.ok);
  CHECK(missing.message == "cannot execute /nonexistent/migrate: No such file or directory");
}

TEST_CASE("check: Applied on exit 0, NotApplied otherwise, Unknown without a check") {
  Fixture f;
  PosixProcessRunner runner;
  CommandStepExecutor executor(runner);
  CHECK(executor.check(f.context) == CheckResult::Unknown);

  f.step.command.check = {"/bin/sh", "-c", "echo checking; test \"$BOOTSTATE_STEP\" = dump"};
  CHECK(executor.check(f.context) == CheckResult::Applied);
  CHECK(read_text(f.context.log_path) == "checking\n");  // check output goes to the step log

  f.step.command.check = {"/bin/false"};
  CHECK(executor.check(f.context) == CheckResult::NotApplied);
  f.step.command.check = {"/nonexistent/check"};
  CHECK(executor.check(f.context) == CheckResult::NotApplied);
}

TEST_CASE("command steps do not revert themselves") {
  Fixture f;
  RecordingRunner runner;
  CommandStepExecutor executor(runner);
  StepOutcome outcome = executor.revert(f.context);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.message == "command steps do not revert themselves");
  CHECK(runner.specs.empty());
}

TEST_CASE("describe: preview text or the argv, the check, and nothing run") {
  Fixture f;
  RecordingRunner runner;
  CommandStepExecutor executor(runner);
  f.step.command.argv = {"/bin/pg_upgrade", "--link"};
  StepPreview plain = executor.describe(f.context);
  CHECK(plain.lines == std::vector<std::string>{"runs /bin/pg_upgrade --link"});
  CHECK(plain.detail_json == R"({"command":["/bin/pg_upgrade","--link"],"timeout":60})");
  CHECK(plain.blocker.empty());

  f.step.preview = "upgrades the PostgreSQL cluster to 16";
  f.step.command.check = {"/bin/test", "-e", "/var/lib/postgresql/16"};
  StepPreview described = executor.describe(f.context);
  CHECK(described.lines == std::vector<std::string>{"upgrades the PostgreSQL cluster to 16",
                                                    "check: /bin/test -e /var/lib/postgresql/16"});
  CHECK(described.detail_json ==
        R"({"command":["/bin/pg_upgrade","--link"],"check":["/bin/test","-e",)"
        R"("/var/lib/postgresql/16"],"timeout":60})");
  CHECK(runner.specs.empty());
}

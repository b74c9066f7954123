// FirmwareStepExecutor through a real process runner, the real helper and the real daemon.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "firmware/firmware_step.hpp"
#include "tests/firmware/fwupd_test_env.hpp"

namespace bootstate::test {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A firmware step and the context the engine would give it.
struct StepFixture {
  explicit StepFixture(const std::string& dir, std::string version = "1.2.4",
                       std::string device = kWebcamId) {
    step.id = "webcam";
    step.kind = StepKind::Firmware;
    step.timeout_seconds = 60;
    step.firmware = FirmwareSpec{std::move(device), cabinet("fakedevice124.cab"),
                                 std::move(version), false, false};
    migration.id = "webcam-firmware";
    migration.steps = {step};
    record.id = step.id;
    context.migration = &migration;
    context.step = &migration.steps.front();
    context.root = "/";
    context.work_dir = dir;
    context.log_path = dir + "/step.log";
    context.record = &record;
  }
  Step step;
  Migration migration;
  StepRecord record;
  StepContext context;
};

}  // namespace

TEST_CASE("firmware step: run installs, check sees it, a second run installs nothing") {
  require_fwupd();
  FwupdDaemon daemon;
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir());

  CHECK(executor.check(fixture.context) == CheckResult::NotApplied);
  const auto started = std::chrono::steady_clock::now();
  StepOutcome outcome = executor.run(fixture.context);
  report_time("FirmwareStepExecutor::run install 1.2.2 -> 1.2.4",
              std::chrono::steady_clock::now() - started);
  INFO(outcome.message);
  CHECK(outcome.ok);
  CHECK_FALSE(outcome.awaiting_reboot);
  CHECK(outcome.message == "Integrated Webcam\u2122 now runs 1.2.4");
  CHECK(runner.last().argv[1] == "install");
  CHECK(runner.last().timeout_seconds == 60 + FirmwareStepExecutor::kRunnerGraceSeconds);
  CHECK(std::find(runner.last().argv.begin(), runner.last().argv.end(), "60") !=
        runner.last().argv.end());
  CHECK(executor.check(fixture.context) == CheckResult::Applied);

  StepOutcome again = executor.run(fixture.context);
  CHECK(again.ok);
  CHECK(contains(again.message, "nothing installed"));
}

// Issue #16 item 4: the console heartbeat shows the step's own percentage, which for a firmware
// step is fwupd's. The helper writes it where a command step writes $BOOTSTATE_PROGRESS.
TEST_CASE("firmware step: fwupd's percentage reaches the step's progress file while it writes") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["WriteDelay"] = "200";
  FwupdDaemon daemon(options);
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir());
  const std::string progress = daemon.dir() + "/progress";
  std::remove(progress.c_str());

  std::atomic<bool> done{false};
  std::set<std::string> seen;
  std::thread watcher([&] {
    while (!done) {
      std::ifstream file(progress);
      std::string line;
      if (std::getline(file, line)) seen.insert(line);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  StepOutcome outcome = executor.run(fixture.context);
  done = true;
  watcher.join();
  INFO(outcome.message);
  CHECK(outcome.ok);
  CHECK(std::find(runner.last().environment.begin(), runner.last().environment.end(),
                  "BOOTSTATE_PROGRESS=" + progress) != runner.last().environment.end());
  // Every line is "PERCENT fwupd: STATUS", and fwupd said something between 1 and 99 %.
  bool midway = false;
  for (const std::string& line : seen) {
    INFO(line);
    const auto space = line.find(" fwupd: ");
    REQUIRE(space != std::string::npos);
    const int percent = std::stoi(line.substr(0, space));
    midway = midway || (percent > 0 && percent < 100);
  }
  CHECK(midway);
  std::ifstream leftover(progress + ".new");
  CHECK_FALSE(leftover.good());  // renamed into place, never left half-written
}

TEST_CASE("firmware step: describe previews device, versions and irreversibility") {
  require_fwupd();
  FwupdDaemon daemon;
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir());
  StepPreview preview = executor.describe(fixture.context);
  REQUIRE_FALSE(preview.lines.empty());
  CHECK(contains(preview.lines.front(), "Integrated Webcam\u2122 1.2.2 -> 1.2.4"));
  CHECK(preview.irreversible);
  CHECK_FALSE(preview.needs_reboot);
  CHECK(preview.blocker.empty());
  CHECK(contains(preview.detail_json, "\"current_version\":\"1.2.2\""));
  CHECK(runner.last().argv[1] == "describe");

  StepFixture missing(daemon.dir(), "1.2.4", "0123456789abcdef");
  StepPreview blocked = executor.describe(missing.context);
  CHECK(contains(blocked.blocker, "no device with id \"0123456789abcdef\""));
  CHECK(blocked.irreversible);
  CHECK(executor.check(missing.context) == CheckResult::Unknown);
}

TEST_CASE("firmware step: a wrong version fails with the helper's message") {
  require_fwupd();
  FwupdDaemon daemon;
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir(), "9.9.9");
  StepOutcome outcome = executor.run(fixture.context);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.exit_status == 1);
  CHECK(contains(outcome.message, "contains version 1.2.4, but the plan expects 9.9.9"));
  CHECK(contains(executor.describe(fixture.context).blocker, "plan expects 9.9.9"));
}

TEST_CASE("firmware step: awaiting a reboot, then the next boot verifies") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["NeedsReboot"] = "true";
  FwupdDaemon daemon(options);
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir());
  StepOutcome staged = executor.run(fixture.context);
  INFO(staged.message);
  CHECK(staged.ok);
  CHECK(staged.awaiting_reboot);

  fixture.record.awaiting_reboot = true;  // what the engine persists before rebooting
  daemon.restart();
  StepOutcome verified = executor.run(fixture.context);
  CHECK(runner.last().argv[1] == "verify");
  CHECK_FALSE(verified.ok);
  CHECK_FALSE(verified.awaiting_reboot);
  CHECK(contains(verified.message, "after the reboot Integrated Webcam\u2122 runs 1.2.2"));
}

TEST_CASE("firmware step: verify succeeds when the device runs the version") {
  require_fwupd();
  FwupdDaemon daemon;
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(daemon.dir());
  REQUIRE(executor.run(fixture.context).ok);
  fixture.record.awaiting_reboot = true;
  StepOutcome verified = executor.run(fixture.context);
  CHECK(runner.last().argv[1] == "verify");
  CHECK(verified.ok);
  CHECK(contains(verified.message, "runs 1.2.4"));
}

TEST_CASE("firmware step: fwupd not running fails, and preview shows it as a blocker") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.start_fwupd = false;
  FwupdDaemon bus_only(options);
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, BOOTSTATE_FWUPD_HELPER);
  StepFixture fixture(bus_only.dir());
  StepOutcome outcome = executor.run(fixture.context);
  CHECK_FALSE(outcome.ok);
  CHECK(contains(outcome.message, "fwupd is not running"));
  CHECK(contains(executor.describe(fixture.context).blocker, "fwupd is not running"));
  CHECK(executor.check(fixture.context) == CheckResult::Unknown);
}

TEST_CASE("firmware step: revert never undoes, and a missing helper fails, never succeeds") {
  RecordingRunner runner;
  FirmwareStepExecutor executor(runner, "/nonexistent/bootstate-fwupd");
  StepFixture fixture("/tmp");
  StepOutcome reverted = executor.revert(fixture.context);
  CHECK_FALSE(reverted.ok);
  CHECK(reverted.message == "firmware is machine state and is never undone");
  CHECK(runner.calls() == 0);
  StepOutcome outcome = executor.run(fixture.context);
  CHECK_FALSE(outcome.ok);
  CHECK(contains(outcome.message, "bootstate-fwupd install"));
  CHECK(executor.check(fixture.context) == CheckResult::Unknown);
}

}  // namespace bootstate::test

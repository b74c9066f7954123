// bootstate-fwupd against the real fwupd daemon and its fake webcam (1.2.2) on a private bus.
#include <signal.h>

#include "tests/firmware/fwupd_test_env.hpp"

namespace bootstate::test {
namespace {

std::vector<std::string> install_args(const std::string& device, const char* cab,
                                      const std::string& version) {
  return {"install", "--device", device, "--cabinet", cabinet(cab), "--version", version};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("fwupd helper: the webcam goes 1.2.2 -> 1.2.4, a re-run installs nothing") {
  require_fwupd();
  FwupdDaemon daemon;
  report_time("fwupd daemon start (until it owns its bus name)", daemon.start_time());

  auto described = run_helper({"describe", "--device", kWebcamId, "--cabinet",
                               cabinet("fakedevice124.cab"), "--version", "1.2.4"},
                              daemon.dir());
  CHECK(described.process.exit_status == 0);
  CHECK(described.reply.result == HelperResult::Described);
  CHECK(described.reply.current_version == "1.2.2");
  CHECK_FALSE(described.reply.matches);
  CHECK(described.reply.blocker.empty());
  report_time("helper describe", described.elapsed);

  auto first = run_helper(install_args(kWebcamGuid, "fakedevice124.cab", "1.2.4"), daemon.dir());
  INFO(first.process.stdout_text << first.log);
  CHECK(first.process.exit_status == 0);
  CHECK(first.reply.result == HelperResult::Done);
  CHECK(first.reply.installed);
  CHECK(first.reply.device_id == kWebcamId);
  CHECK(first.reply.current_version == "1.2.4");
  report_time("helper install 1.2.2 -> 1.2.4", first.elapsed);

  auto again = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), daemon.dir());
  CHECK(again.process.exit_status == 0);
  CHECK(again.reply.result == HelperResult::Done);
  CHECK_FALSE(again.reply.installed);
  CHECK(contains(again.reply.message, "nothing installed"));

  // verify after a live install: fwupd recorded success; read once, then cleared.
  auto verified = run_helper({"verify", "--device", kWebcamId, "--version", "1.2.4"}, daemon.dir());
  CHECK(verified.reply.result == HelperResult::Done);
  CHECK(contains(verified.reply.message, "fwupd recorded success"));
  report_time("helper verify", verified.elapsed);
  auto verified_again =
      run_helper({"verify", "--device", kWebcamId, "--version", "1.2.4"}, daemon.dir());
  CHECK(verified_again.reply.result == HelperResult::Done);
  CHECK(contains(verified_again.reply.message, "no result"));

  // back down with allow-older: the flags reach fwupd.
  auto older = run_helper(install_args(kWebcamId, "fakedevice123.cab", "1.2.3"), daemon.dir());
  CHECK(older.reply.result == HelperResult::Failed);
  CHECK(contains(older.reply.message, "older"));
  auto args = install_args(kWebcamId, "fakedevice123.cab", "1.2.3");
  args.push_back("--allow-older");
  auto downgraded = run_helper(args, daemon.dir());
  CHECK(downgraded.reply.result == HelperResult::Done);
  CHECK(downgraded.reply.current_version == "1.2.3");
}

TEST_CASE("fwupd helper: progress goes to stderr while fwupd writes") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["WriteDelay"] = "200";
  FwupdDaemon daemon(options);
  auto run = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), daemon.dir());
  INFO(run.log);
  CHECK(run.reply.result == HelperResult::Done);
  CHECK(contains(run.log, "progress: "));
}

TEST_CASE("fwupd helper: a wrong expected version fails and installs nothing") {
  require_fwupd();
  FwupdDaemon daemon;
  auto run = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.5"), daemon.dir());
  CHECK(run.process.exit_status == 1);
  CHECK(run.reply.result == HelperResult::Failed);
  CHECK(contains(run.reply.message, "contains version 1.2.4, but the plan expects 1.2.5"));
  CHECK_FALSE(run.reply.installed);
  CHECK(run.reply.current_version == "1.2.2");
}

TEST_CASE("fwupd helper: an unknown device fails and says which") {
  require_fwupd();
  FwupdDaemon daemon;
  auto by_id =
      run_helper(install_args("0123456789abcdef", "fakedevice124.cab", "1.2.4"), daemon.dir());
  CHECK(by_id.process.exit_status == 1);
  CHECK(by_id.reply.message == "fwupd knows no device with id \"0123456789abcdef\"");
  auto by_guid =
      run_helper(install_args("00000000-0000-0000-0000-000000000001", "fakedevice124.cab", "1.2.4"),
                 daemon.dir());
  CHECK(by_guid.reply.result == HelperResult::Failed);
  CHECK(contains(by_guid.reply.message, "no device with GUID"));
  auto described = run_helper({"describe", "--device", "0123456789abcdef"}, daemon.dir());
  CHECK(described.reply.result == HelperResult::Described);
  CHECK(contains(described.reply.blocker, "no device"));
}

TEST_CASE("fwupd helper: a cabinet for another device is refused before anything is written") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["CompositeChild"] = "true";  // adds Module1 and Module2
  FwupdDaemon daemon(options);
  const std::string module1 = "7fddead7-12b5-4fb9-9fa0-6d30305df755";
  auto run = run_helper(install_args(module1, "fakedevice124.cab", "1.2.4"), daemon.dir());
  INFO(run.process.stdout_text);
  CHECK(run.reply.result == HelperResult::Failed);
  CHECK(contains(run.reply.message, "is for another device"));
  CHECK_FALSE(run.reply.installed);
}

TEST_CASE("fwupd helper: fwupd's own message comes back when the write fails") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["WriteSupported"] = "false";
  FwupdDaemon daemon(options);
  auto run = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), daemon.dir());
  CHECK(run.process.exit_status == 1);
  CHECK(contains(run.reply.message, "device was not in supported mode"));
}

TEST_CASE("fwupd helper: an unsigned cabinet fails when fwupd trusts only signed ones") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.only_trusted = true;
  FwupdDaemon daemon(options);
  auto run = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), daemon.dir());
  INFO(run.process.stdout_text);
  CHECK(run.process.exit_status == 1);
  CHECK(run.reply.result == HelperResult::Failed);
  CHECK(contains(run.reply.message, "signature"));
  CHECK(run.reply.current_version == "1.2.2");
}

TEST_CASE("fwupd helper: staged for reboot, then verify reads fwupd's result after it") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.test_plugin["NeedsReboot"] = "true";
  FwupdDaemon daemon(options);
  auto staged = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), daemon.dir());
  INFO(staged.process.stdout_text);
  CHECK(staged.process.exit_status == 0);
  CHECK(staged.reply.result == HelperResult::AwaitingReboot);
  CHECK(staged.reply.needs_reboot);
  CHECK(staged.reply.installed);

  // The "reboot": fwupd starts again with its history; the fake webcam comes back at 1.2.2,
  // i.e. the staged update did not take. verify must say so with fwupd's words, and clear it.
  const auto started = std::chrono::steady_clock::now();
  daemon.restart();
  report_time("fwupd daemon restart", std::chrono::steady_clock::now() - started);
  auto verified = run_helper({"verify", "--device", kWebcamId, "--version", "1.2.4"}, daemon.dir());
  INFO(verified.process.stdout_text);
  CHECK(verified.process.exit_status == 1);
  CHECK(verified.reply.result == HelperResult::Failed);
  CHECK(contains(verified.reply.message, "runs 1.2.2, not 1.2.4"));
  CHECK(contains(verified.reply.message, "fwupd recorded"));
}

TEST_CASE("fwupd helper: fwupd not running or no system bus fails at once") {
  require_fwupd();
  FwupdDaemon::Options options;
  options.start_fwupd = false;
  FwupdDaemon bus_only(options);
  auto absent = run_helper(install_args(kWebcamId, "fakedevice124.cab", "1.2.4"), bus_only.dir());
  CHECK(absent.process.exit_status == 1);
  CHECK(contains(absent.reply.message,
                 "fwupd is not running (org.freedesktop.fwupd not on the system bus)"));
  CHECK(absent.elapsed < std::chrono::seconds(2));
  report_time("helper with nobody owning org.freedesktop.fwupd", absent.elapsed);

  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + bus_only.dir() + "/none.sock").c_str(), 1);
  auto no_bus = run_helper({"describe", "--device", kWebcamId}, bus_only.dir());
  CHECK(no_bus.reply.result == HelperResult::Failed);
  CHECK(contains(no_bus.reply.message, "cannot reach the system bus"));
  report_time("helper with no system bus", no_bus.elapsed);
}

TEST_CASE("fwupd helper: a hung fwupd is given up on within --timeout") {
  require_fwupd();
  FwupdDaemon daemon;
  ::kill(daemon.fwupd_pid(), SIGSTOP);
  auto args = install_args(kWebcamId, "fakedevice124.cab", "1.2.4");
  args.insert(args.end(), {"--timeout", "2"});
  auto hung = run_helper(args, daemon.dir());
  ::kill(daemon.fwupd_pid(), SIGCONT);
  CHECK(hung.process.exit_status == 1);
  CHECK(contains(hung.reply.message, "fwupd did not answer within 2 s"));
  CHECK(hung.elapsed >= std::chrono::seconds(2));
  CHECK(hung.elapsed < std::chrono::seconds(4));
  report_time("helper against a stopped fwupd, --timeout 2", hung.elapsed);
}

}  // namespace bootstate::test

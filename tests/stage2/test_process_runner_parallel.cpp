// PosixProcessRunner called from several threads at once (`run --jobs N`, issue #15 item 4):
// the leftover sweep of a step that ends must never take another step's child for a leftover.
//
// The children here are /bin/sh scripts: the tests' own programs, not something bootstate runs
// through a shell.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "stage2/process_runner.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;

namespace {

ProcessSpec shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.environment = {"PATH=/usr/bin:/bin"};
  return spec;
}

bool process_gone(pid_t pid) {
  std::string stat = bootstate::test::read_text("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() &&
         (stat[close + 2] == 'Z' || stat[close + 2] == 'X');
}

pid_t first_pid(const std::string& text) {
  std::istringstream words(text);
  pid_t pid = 0;
  words >> pid;
  return pid;
}

}  // namespace

TEST_CASE("a step that starts while another step's leftovers are swept is not swept with them") {
  // The first step leaves a helper in a session of its own that ignores SIGTERM: its sweep then
  // lasts the whole grace period. A step started in that time had its child SIGTERMed by that
  // sweep (a child bootstate did not have when the first step started): "killed by signal 15".
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(1500);
  PosixProcessRunner runner(options);
  ProcessResult first;
  bootstate::test::TempDir dir;
  ProcessSpec leaving = shell("setsid sh -c 'trap \"\" TERM; echo $$ > " + (dir / "pid") +
                              "; exec sleep 100' </dev/null >/dev/null 2>&1 & sleep 0.1");
  std::thread sweeping([&] { first = runner.run(leaving); });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // its sweep has begun
  ProcessResult second = runner.run(shell("sleep 0.3; exit 7"));
  sweeping.join();
  CHECK(first.succeeded());
  CHECK(second.exit_status == 7);
  CHECK(second.message == "exit status 7");
  const pid_t helper = first_pid(bootstate::test::read_text(dir / "pid"));
  REQUIRE(helper > 0);
  CHECK_MESSAGE(process_gone(helper), "pid " << helper << " outlived its step");
  if (!process_gone(helper)) ::kill(helper, SIGKILL);
}

TEST_CASE("two steps at once: the one that ends last sweeps what both left behind") {
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(300);
  PosixProcessRunner runner(options);
  bootstate::test::TempDir dir;
  // Each helper writes its own pid ($$ of the shell that becomes the sleeper): `setsid` may fork,
  // and then $! would name the setsid that exited at once.
  auto leaving = [&](const std::string& name, const std::string& then) {
    return shell("setsid sh -c 'echo $$ > " + (dir / name) +
                 "; exec sleep 100' </dev/null >/dev/null 2>&1 & " + then);
  };
  auto helper = [&](const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      const pid_t pid = first_pid(bootstate::test::read_text(dir / name));
      if (pid > 0) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid_t{0};
  };
  ProcessResult slow_result;
  std::thread first([&] { slow_result = runner.run(leaving("slow", "sleep 0.8")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ProcessResult quick_result = runner.run(leaving("quick", "sleep 0.1"));
  // The quick one ended while the slow one ran: its helper is still there, the slow step's
  // child could not be told from it.
  const pid_t quick_helper = helper("quick");
  REQUIRE(quick_helper > 0);
  CHECK_FALSE(process_gone(quick_helper));
  first.join();
  const pid_t slow_helper = helper("slow");
  REQUIRE(slow_helper > 0);
  CHECK(slow_result.succeeded());
  CHECK(quick_result.succeeded());
  for (pid_t pid : {quick_helper, slow_helper}) {
    CHECK_MESSAGE(process_gone(pid), "pid " << pid << " outlived the steps");
    if (!process_gone(pid)) ::kill(pid, SIGKILL);
  }
}

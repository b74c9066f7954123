// A cgroup per step (issue #13 item 14) against the kernel's real cgroup v2 hierarchy: the test
// makes a cgroup of its own, marks it delegated as systemd does for Delegate=yes
// (trusted.delegate=1), moves itself in, and runs steps the way bootstate's units would.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "stage2/process_runner.hpp"
#include "stage2/step_cgroup.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::read_text;
using bootstate::test::TempDir;
using bootstate::test::write_text;

namespace {

// ctest skips a case that exits 77 (SKIP_RETURN_CODE in CMakeLists.txt): a machine without a
// writable cgroup v2 hierarchy shows it as not run, never as passed. Under CI it fails.
[[noreturn]] void cannot_run(const std::string& why) {
  std::fprintf(stderr, "SKIP: no writable cgroup v2 hierarchy here: %s\n", why.c_str());
  std::exit(std::getenv("CI") != nullptr ? 1 : 77);
}

std::string unified_mount() {
  for (const char* candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs info {};
    if (::statfs(candidate, &info) == 0 && info.f_type == 0x63677270) return candidate;
  }
  cannot_run("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
}

// This process's cgroup, relative to the unified mount ("/" or "/system.slice/x.service").
std::string own_cgroup() {
  std::istringstream lines(read_text("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  cannot_run("no 0:: line in /proc/self/cgroup");
}

bool gone(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && close + 2 < stat.size() &&
                          (stat[close + 2] == 'Z' || stat[close + 2] == 'X'));
}

// A cgroup for the test, delegated (or not), that the test process lives in while it exists.
class TestCgroup {
 public:
  explicit TestCgroup(bool delegated) {
    const std::string mount = unified_mount();
    home_ = mount + own_cgroup();
    if (home_.back() == '/') home_.pop_back();
    path_ = home_ + "/bootstate-test-" + std::to_string(::getpid());
    if (::mkdir(path_.c_str(), 0755) != 0) cannot_run("mkdir " + path_ + ": " + strerror(errno));
    if (delegated && ::setxattr(path_.c_str(), "trusted.delegate", "1", 1, 0) != 0) {
      ::rmdir(path_.c_str());
      cannot_run("setxattr trusted.delegate: " + std::string(strerror(errno)));
    }
    if (!write_procs(path_)) {
      ::rmdir(path_.c_str());
      cannot_run("cannot move into " + path_);
    }
  }
  ~TestCgroup() {
    write_procs(home_);
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

  static bool write_procs(const std::string& cgroup) {
    FILE* file = std::fopen((cgroup + "/cgroup.procs").c_str(), "w");
    if (file == nullptr) return false;
    const bool written = std::fputs("0", file) >= 0;
    return std::fclose(file) == 0 && written;
  }

 private:
  std::string home_;
  std::string path_;
};

std::size_t step_cgroups_in(const std::string& cgroup) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(cgroup)) {
    if (entry.path().filename().string().rfind("bootstate-step-", 0) == 0) ++count;
  }
  return count;
}

ProcessSpec shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.environment = {"PATH=/usr/bin:/bin"};
  spec.capture_stdout = true;
  return spec;
}

}  // namespace

TEST_CASE("cgroup: only a cgroup systemd marked delegated is used") {
  {
    TestCgroup plain(false);
    CHECK_FALSE(stage2::delegated_cgroup().has_value());
  }
  TestCgroup delegated(true);
  auto found = stage2::delegated_cgroup();
  REQUIRE(found.has_value());
  CHECK(*found == delegated.path());
  // bootstate in a subgroup of the delegated unit cgroup (DelegateSubgroup=): still delegated.
  const std::string sub = delegated.path() + "/supervisor";
  REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
  REQUIRE(TestCgroup::write_procs(sub));
  found = stage2::delegated_cgroup();
  CHECK((found && *found == sub));
  REQUIRE(TestCgroup::write_procs(delegated.path()));
  ::rmdir(sub.c_str());
  // A /proc/self/cgroup that climbs out of the hierarchy is not believed.
  TempDir dir;
  write_text(dir / "cgroup", "0::/../../etc\n");
  CHECK_FALSE(stage2::delegated_cgroup(dir / "cgroup").has_value());
}

TEST_CASE("cgroup: a step's detached helper ends with its step while another step still runs") {
  // Before: the subreaper sweep runs only when no other step is running (it could not tell
  // whose an adopted process is), so with --jobs the helper outlived its step.
  TestCgroup delegated(true);
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(300);
  options.cgroup_parent = stage2::delegated_cgroup();
  REQUIRE(options.cgroup_parent);
  PosixProcessRunner runner(options);

  std::thread other([&runner] {
    ProcessResult slow = runner.run(shell("sleep 2"));
    CHECK(slow.succeeded());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ProcessResult result =
      runner.run(shell("setsid sleep 100 </dev/null >/dev/null 2>&1 & echo $!; sleep 0.3"));
  CHECK(result.succeeded());
  const pid_t helper = std::atoi(result.stdout_text.c_str());
  REQUIRE(helper > 0);
  CHECK_MESSAGE(gone(helper), "pid " << helper << " outlived its step");
  CHECK(step_cgroups_in(delegated.path()) == 1);  // only the other step's, still running
  other.join();
  if (!gone(helper)) ::kill(helper, SIGKILL);
  CHECK(step_cgroups_in(delegated.path()) == 0);  // each removed when its step ended
}

TEST_CASE("cgroup: a helper that ignores SIGTERM is killed with cgroup.kill after the grace") {
  TestCgroup delegated(true);
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(200);
  options.cgroup_parent = stage2::delegated_cgroup();
  PosixProcessRunner runner(options);
  ProcessResult result = runner.run(shell(
      "setsid sh -c 'trap \"\" TERM; sleep 100' </dev/null >/dev/null 2>&1 & echo $!; sleep 0.3"));
  CHECK(result.succeeded());
  const pid_t helper = std::atoi(result.stdout_text.c_str());
  REQUIRE(helper > 0);
  CHECK(gone(helper));
  CHECK(step_cgroups_in(delegated.path()) == 0);
}

// PosixProcessRunner against real child processes: exit codes, signals, timeouts that take a
// whole process group down, exec failures, the exact environment, bounded logs and captures.
//
// The children here are /bin/sh scripts: the tests' own programs, not something bootstate runs
// through a shell.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "stage2/process_output.hpp"
#include "stage2/process_runner.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::read_text;
using bootstate::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

PosixProcessRunner fast_runner() {
  PosixProcessRunner::Options options;
  options.kill_grace = std::chrono::milliseconds(300);
  return PosixProcessRunner(options);
}

ProcessSpec shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.environment = {"PATH=/usr/bin:/bin"};
  return spec;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A process is gone when it no longer exists or is a zombie (where init does not reap
// orphans, as in some containers, a killed orphan stays a zombie).
bool process_gone(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() &&
         (stat[close + 2] == 'Z' || stat[close + 2] == 'X');
}

std::vector<pid_t> pids_in(const std::string& text) {
  std::vector<pid_t> pids;
  std::istringstream lines(text);
  for (pid_t pid = 0; lines >> pid;) pids.push_back(pid);
  return pids;
}

}  // namespace

TEST_CASE("exit status is reported in numbers and words") {
  auto runner = fast_runner();
  ProcessResult failed = runner.run(shell("exit 3"));
  CHECK(failed.started);
  CHECK(failed.exit_status == 3);
  CHECK(failed.signal == 0);
  CHECK_FALSE(failed.timed_out);
  CHECK(failed.message == "exit status 3");
  CHECK_FALSE(failed.succeeded());

  ProcessResult ok = runner.run(shell("exit 0"));
  CHECK(ok.succeeded());
  CHECK(ok.message == "exit status 0");
}

TEST_CASE("a child killed by a signal is reported as such") {
  auto runner = fast_runner();
  ProcessResult result = runner.run(shell("kill -9 $$"));
  CHECK(result.started);
  CHECK(result.signal == 9);
  CHECK(result.message == "killed by signal 9");
  CHECK_FALSE(result.succeeded());
}

TEST_CASE("a timeout kills the whole process group, grandchild included") {
  auto runner = fast_runner();
  ProcessSpec spec = shell("echo $$; sleep 100 & echo $!; sleep 100");
  spec.capture_stdout = true;
  spec.timeout_seconds = 1;
  auto start = Clock::now();
  ProcessResult result = runner.run(spec);
  double elapsed = seconds_since(start);
  CHECK(result.started);
  CHECK(result.timed_out);
  CHECK(result.message == "timed out after 1 s");
  CHECK_FALSE(result.succeeded());
  CHECK(elapsed >= 1.0);
  CHECK(elapsed < 4.0);
  auto pids = pids_in(result.stdout_text);
  REQUIRE(pids.size() == 2);
  for (pid_t pid : pids) CHECK_MESSAGE(process_gone(pid), "pid " << pid << " survived");
}

TEST_CASE("a group that ignores SIGTERM is killed with SIGKILL after the grace period") {
  auto runner = fast_runner();
  // An ignored signal stays ignored across exec, so the sleep ignores SIGTERM too.
  ProcessSpec spec = shell("trap '' TERM; sleep 100 & echo $!; sleep 100");
  spec.capture_stdout = true;
  spec.timeout_seconds = 1;
  auto start = Clock::now();
  ProcessResult result = runner.run(spec);
  double elapsed = seconds_since(start);
  CHECK(result.timed_out);
  CHECK(result.signal == SIGKILL);
  CHECK(result.message == "timed out after 1 s");
  CHECK(elapsed >= 1.3);
  CHECK(elapsed < 4.0);
  auto pids = pids_in(result.stdout_text);
  REQUIRE(pids.size() == 1);
  CHECK(process_gone(pids[0]));
}

TEST_CASE("a grandchild that keeps the output pipe open does not hang the runner") {
  auto runner = fast_runner();
  TempDir dir;
  ProcessSpec spec = shell("sleep 100 & echo $!");
  spec.log_path = dir / "log";
  auto start = Clock::now();
  ProcessResult result = runner.run(spec);
  CHECK(seconds_since(start) < 3.0);
  CHECK(result.succeeded());
  auto pids = pids_in(read_text(spec.log_path));
  REQUIRE(pids.size() == 1);
  CHECK(process_gone(pids[0]));
}

TEST_CASE("exec failures are reported with the path and errno text") {
  auto runner = fast_runner();
  ProcessSpec spec;
  spec.argv = {"/x/y"};
  ProcessResult missing = runner.run(spec);
  CHECK_FALSE(missing.started);
  CHECK(missing.message == "cannot execute /x/y: No such file or directory");

  TempDir dir;
  spec.argv = {dir / "not-executable"};
  test::write_text(spec.argv[0], "#!/bin/sh\n");
  ProcessResult denied = runner.run(spec);
  CHECK_FALSE(denied.started);
  CHECK(denied.message == "cannot execute " + spec.argv[0] + ": Permission denied");

  spec.argv = {"relative/program"};
  CHECK(runner.run(spec).message == "cannot execute relative/program: not an absolute path");

  spec.argv = {"/bin/true"};
  spec.work_dir = dir / "missing";
  ProcessResult no_dir = runner.run(spec);
  CHECK_FALSE(no_dir.started);
  CHECK(no_dir.message ==
        "cannot change directory to " + spec.work_dir + ": No such file or directory");
}

TEST_CASE("the child gets exactly the given environment, nothing inherited") {
  ::setenv("BOOTSTATE_TEST_LEAK", "1", 1);
  auto runner = fast_runner();
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.environment = {"A=1", "B=two words", "C="};
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  ::unsetenv("BOOTSTATE_TEST_LEAK");
  CHECK(result.succeeded());
  CHECK(result.stdout_text == "A=1\nB=two words\nC=\n");
}

TEST_CASE("the child runs in work_dir, in its own session, with stdin from /dev/null") {
  auto runner = fast_runner();
  TempDir dir;
  // Fields after "(comm) ": state ppid pgrp session.
  ProcessSpec spec = shell("pwd; cat; set -- $(sed 's/.*) //' /proc/$$/stat); echo $$ $3 $4");
  spec.work_dir = dir.path();
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  std::istringstream lines(result.stdout_text);
  std::string cwd;
  std::getline(lines, cwd);
  CHECK(cwd == std::filesystem::canonical(dir.path()).string());
  pid_t pid = 0, pgrp = 0, session = 0;
  lines >> pid >> pgrp >> session;
  CHECK(pid != 0);
  CHECK(pgrp == pid);
  CHECK(session == pid);
}

TEST_CASE("no descriptor of the runner leaks into the child") {
  auto runner = fast_runner();
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaky >= 0);
  ProcessSpec spec = shell("ls /proc/$$/fd");
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  ::close(leaky);
  CHECK(result.succeeded());
  CHECK(result.stdout_text == "0\n1\n2\n");
}

TEST_CASE("stdout and stderr go to the log in order, appended") {
  auto runner = fast_runner();
  TempDir dir;
  ProcessSpec spec = shell("echo one; echo two >&2; echo three");
  spec.log_path = dir / "log";
  spec.journal_identifier = "bootstate-test";  // no journald here: sending must not matter
  CHECK(runner.run(spec).succeeded());
  CHECK(read_text(spec.log_path) == "one\ntwo\nthree\n");
  CHECK(runner.run(spec).succeeded());
  CHECK(read_text(spec.log_path) == "one\ntwo\nthree\none\ntwo\nthree\n");
}

TEST_CASE("the log is bounded: one truncation line, the rest dropped") {
  auto runner = fast_runner();
  TempDir dir;
  ProcessSpec spec = shell("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done");
  spec.log_path = dir / "log";
  spec.log_limit_bytes = 100;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  std::string all;
  for (int i = 0; i < 2000; ++i) all += "line-" + std::to_string(i) + "\n";
  std::string kept = all.substr(0, 100);
  std::string expected =
      kept + (kept.back() == '\n' ? "" : "\n") + std::string(stage2::kLogTruncatedLine) + "\n";
  CHECK(read_text(spec.log_path) == expected);
}

TEST_CASE("capture_stdout keeps stdout out of the log, bounded, while stderr is still logged") {
  auto runner = fast_runner();
  TempDir dir;
  ProcessSpec spec = shell("echo out; echo err >&2");
  spec.log_path = dir / "log";
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  CHECK(result.stdout_text == "out\n");
  CHECK(read_text(spec.log_path) == "err\n");

  spec.argv[2] = "echo 0123456789abcdef";
  spec.log_limit_bytes = 10;
  CHECK(runner.run(spec).stdout_text == "0123456789");
}

TEST_CASE("a log that cannot be opened keeps the child from starting") {
  auto runner = fast_runner();
  TempDir dir;
  ProcessSpec spec = shell("exit 0");
  spec.log_path = dir / "missing/log";
  ProcessResult result = runner.run(spec);
  CHECK_FALSE(result.started);
  CHECK(result.message == "cannot open log " + spec.log_path + ": No such file or directory");
}

TEST_CASE("a helper that left the step's session (setsid, double fork) is killed after the step") {
  // issue 13 item 14: the process-group kill misses a daemon in a session of its own; as the
  // child subreaper bootstate inherits it when the step ends and kills it.
  auto runner = fast_runner();
  ProcessSpec spec = shell("setsid sleep 100 </dev/null >/dev/null 2>&1 & echo $!");
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  auto pids = pids_in(result.stdout_text);
  REQUIRE(pids.size() == 1);
  CHECK_MESSAGE(process_gone(pids[0]), "pid " << pids[0] << " outlived its step");
  if (!process_gone(pids[0])) ::kill(pids[0], SIGKILL);
}

TEST_CASE("a double-forked daemon whose middle process stays alive is killed too") {
  auto runner = fast_runner();
  // The middle shell starts its own session, starts a sleeper and waits: neither is in the
  // step's process group, and neither is an orphan until the middle one dies.
  ProcessSpec spec =
      shell("setsid sh -c 'sleep 100 & echo $$ $!; wait' </dev/null 2>/dev/null & sleep 0.2");
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  auto pids = pids_in(result.stdout_text);
  REQUIRE(pids.size() == 2);
  for (pid_t pid : pids) {
    CHECK_MESSAGE(process_gone(pid), "pid " << pid << " outlived its step");
    if (!process_gone(pid)) ::kill(pid, SIGKILL);
  }
}

TEST_CASE("a log path that is a symlink is not followed and the child does not start") {
  // issue 13 item 12: root's log write went through a planted symlink.
  auto runner = fast_runner();
  TempDir dir;
  bootstate::test::write_text(dir / "outside", "precious\n");
  REQUIRE(::symlink((dir / "outside").c_str(), (dir / "step.log").c_str()) == 0);
  ProcessSpec spec = shell("echo written");
  spec.log_path = dir / "step.log";
  ProcessResult result = runner.run(spec);
  CHECK_FALSE(result.started);
  CHECK(result.message == "cannot open log " + spec.log_path + ": it is a symlink");
  CHECK(read_text(dir / "outside") == "precious\n");
}

TEST_CASE("a log path that is a FIFO is refused at once instead of hanging") {
  auto runner = fast_runner();
  TempDir dir;
  REQUIRE(::mkfifo((dir / "step.log").c_str(), 0600) == 0);
  ProcessSpec spec = shell("echo written");
  spec.log_path = dir / "step.log";
  ProcessResult result = runner.run(spec);
  CHECK_FALSE(result.started);
  CHECK(result.message.find("cannot open log " + spec.log_path) == 0);
}

TEST_CASE("a child the program had before the step started is not swept with the step's") {
  // The firmware tests run fwupd and dbus-daemon as children of the test program, then steps:
  // only what appeared during the step is the step's.
  pid_t own = ::fork();
  REQUIRE(own >= 0);
  if (own == 0) {
    ::sleep(100);
    ::_exit(0);
  }
  auto runner = fast_runner();
  ProcessSpec spec = shell("setsid sleep 100 </dev/null >/dev/null 2>&1 & echo $!");
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  CHECK(result.succeeded());
  CHECK_FALSE(process_gone(own));
  auto pids = pids_in(result.stdout_text);
  REQUIRE(pids.size() == 1);
  CHECK(process_gone(pids[0]));
  ::kill(own, SIGKILL);
  int ignored = 0;
  ::waitpid(own, &ignored, 0);
}

// Issue #17: starting a step forked bootstate, which copied its page tables and made every
// page it wrote afterwards fault (copy on write): a cost per step that grew with the state in
// memory (1.5 ms per fork at 1,000 applied migrations). With vfork the parent's pages stay its
// own. 64 MiB written after each of 5 starts: with fork that is ≥ 5 × 16,384 minor faults.
TEST_CASE("starting a step costs bootstate no page faults that grow with its memory") {
  auto runner = fast_runner();
  std::vector<char> memory(64 << 20, 'x');
  auto minor_faults = [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
  };
  const long before = minor_faults();
  for (int run = 0; run < 5; ++run) {
    REQUIRE(runner.run(shell("exit 0")).succeeded());
    for (std::size_t page = 0; page < memory.size(); page += 4096) memory[page] = 'y';
  }
  const long faults = minor_faults() - before;
  INFO("minor faults: " << faults);
  CHECK(faults < 4 * 4096);
}

// The child starts with every signal at its default and none blocked, whatever bootstate
// ignores or blocks (bootstate blocks all of them around vfork: a handler of its own must never
// run in the child, which shares its memory).
TEST_CASE("a step starts with default signal handling, nothing blocked or ignored") {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ::sigaction(SIGUSR1, &ignore, &previous);
  sigset_t blocked;
  sigset_t mask_before;
  ::sigemptyset(&blocked);
  ::sigaddset(&blocked, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &blocked, &mask_before);

  auto runner = fast_runner();
  ProcessSpec spec = shell("grep -E '^Sig(Blk|Ign):' /proc/self/status");
  spec.capture_stdout = true;
  ProcessResult result = runner.run(spec);
  // The runner gave this thread its own mask back: SIGUSR2 still blocked, SIGTERM not.
  sigset_t after;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &after);
  CHECK(::sigismember(&after, SIGUSR2));
  CHECK_FALSE(::sigismember(&after, SIGTERM));

  ::pthread_sigmask(SIG_SETMASK, &mask_before, nullptr);
  ::sigaction(SIGUSR1, &previous, nullptr);
  REQUIRE(result.succeeded());
  // grep is exec'ed by sh, which may ignore nothing itself: both masks are all zero.
  CHECK(result.stdout_text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

#include "tests/firmware/test_process_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace bootstate::test {

ProcessResult TestProcessRunner::run(const ProcessSpec& spec) {
  last_ = spec;
  ++calls_;
  ProcessResult result;
  std::vector<char*> args;
  for (const auto& arg : spec.argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& entry : spec.environment) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.message = "pipe failed";
    return result;
  }
  const std::string log = spec.log_path.empty() ? "/dev/null" : spec.log_path;
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out[1], STDOUT_FILENO);
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    if (!spec.work_dir.empty() && ::chdir(spec.work_dir.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) {
    ::close(out[0]);
    result.message = "fork failed";
    return result;
  }
  result.started = true;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(spec.timeout_seconds);
  char buffer[4096];
  for (;;) {
    int wait_ms = -1;
    if (spec.timeout_seconds > 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    pollfd fd{out[0], POLLIN, 0};
    if (::poll(&fd, 1, wait_ms) <= 0) continue;
    const ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    result.stdout_text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  if (result.timed_out) {
    result.message = "timed out after " + std::to_string(spec.timeout_seconds) + " s";
  } else if (result.signal != 0) {
    result.message = "killed by signal " + std::to_string(result.signal);
  } else {
    result.message = "exit status " + std::to_string(result.exit_status);
  }
  if (result.exit_status == 127) result.started = false;
  return result;
}

}  // namespace bootstate::test

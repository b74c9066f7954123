#include "stage2/process_runner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): declare it with C linkage here.
extern "C" {
#include <sys/pidfd.h>
}

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "stage2/fd.hpp"
#include "stage2/orphan_sweep.hpp"
#include "stage2/process_output.hpp"
#include "stage2/step_cgroup.hpp"

namespace bootstate {

namespace {

using Clock = std::chrono::steady_clock;
using stage2::Fd;
using stage2::OutputSink;

struct Pipe {
  Fd read;
  Fd write;
};

// Pipe ends must not be 0, 1 or 2: the child's dup2 onto its standard descriptors would
// otherwise overwrite one end with another when bootstate itself runs without stdio.
int lift_fd(int fd) {
  if (fd >= 3) return fd;
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return lifted;
}

Expected<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::Io, "cannot create a pipe: {}", errno_text(errno));
  }
  Pipe pipe{Fd(lift_fd(fds[0])), Fd(lift_fd(fds[1]))};
  if (!pipe.read.valid() || !pipe.write.valid()) {
    return make_error(ErrorCode::Io, "cannot create a pipe: {}", errno_text(errno));
  }
  return pipe;
}

// What the child reports through the status pipe when it fails before execve succeeds; the
// pipe is close-on-exec, so end-of-file there means the program is running.
enum class ChildStage : int { Chdir = 1, Stdin, Redirect, Exec, Identity };
struct ChildFailure {
  int stage = 0;
  int error = 0;
};

[[noreturn]] void child_fail(int status_fd, ChildStage stage) {
  ChildFailure failure{static_cast<int>(stage), errno};
  ssize_t ignored = ::write(status_fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

// Runs in the child between vfork and execve, in bootstate's memory and on the stack of the
// thread that called vfork (suspended until execve or _exit), so: only raw, async-signal-safe
// calls, nothing allocated or written outside this frame, never a return. Signals are blocked
// by the parent around vfork; the child sets every handler to default before it unblocks them,
// so no handler of bootstate ever runs in the child.
[[noreturn]] void exec_child(char* const* argv, char* const* envp, const char* work_dir,
                             const ProcessIdentity* identity, int output_fd, int stdout_fd,
                             int status_fd, int cgroup_procs_fd) {
  // Into the step's cgroup first, while still root (stage2/step_cgroup.hpp). Failing that,
  // the step runs where bootstate runs and the subreaper sweep is what catches its leftovers.
  if (cgroup_procs_fd >= 0) (void)!::write(cgroup_procs_fd, "0", 1);
  ::setsid();
  // The identity first, so that the work directory is entered with the step's own rights.
  // Raw syscalls: glibc's setuid/setgid wrappers synchronise all threads of the process, which
  // after fork are gone (setgroups has no such wrapper issue, but stays with its siblings).
  if (identity != nullptr &&
      (::syscall(SYS_setgroups, identity->groups.size(), identity->groups.data()) != 0 ||
       ::syscall(SYS_setresgid, identity->gid, identity->gid, identity->gid) != 0 ||
       ::syscall(SYS_setresuid, identity->uid, identity->uid, identity->uid) != 0)) {
    child_fail(status_fd, ChildStage::Identity);
  }
  if (work_dir != nullptr && ::chdir(work_dir) != 0) child_fail(status_fd, ChildStage::Chdir);
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0) child_fail(status_fd, ChildStage::Stdin);
  if (::dup2(stdout_fd, 1) < 0 || ::dup2(output_fd, 2) < 0) {
    child_fail(status_fd, ChildStage::Redirect);
  }
  // Nothing bootstate has open leaks into the step (the status pipe closes at execve).
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(argv[0], argv, envp);
  child_fail(status_fd, ChildStage::Exec);
}

// What exec_child needs, in one place the vfork'ed child only reads.
struct ChildArgs {
  char* const* argv;
  char* const* envp;
  const char* work_dir;
  const ProcessIdentity* identity;
  int output_fd;
  int stdout_fd;
  int status_fd;
  int cgroup_procs_fd;
};

// The vfork itself, alone in its frame: the parent's locals cannot be clobbered by the child
// (vfork returns twice, like setjmp), and the child only reads `args`.
__attribute__((noinline)) pid_t vfork_exec(const ChildArgs& args) {
  const pid_t pid = ::vfork();
  if (pid == 0) {
    exec_child(args.argv, args.envp, args.work_dir, args.identity, args.output_fd, args.stdout_fd,
               args.status_fd, args.cgroup_procs_fd);
  }
  return pid;
}

std::string failure_message(const ChildFailure& failure, const ProcessSpec& spec) {
  std::string why = errno_text(failure.error);
  switch (static_cast<ChildStage>(failure.stage)) {
    case ChildStage::Chdir:
      return fmt::format("cannot change directory to {}: {}", spec.work_dir, why);
    case ChildStage::Stdin:
      return fmt::format("cannot open /dev/null for {}: {}", spec.argv[0], why);
    case ChildStage::Redirect:
      return fmt::format("cannot redirect the output of {}: {}", spec.argv[0], why);
    case ChildStage::Identity:
      return fmt::format("cannot run {} as uid {} gid {}: {}", spec.argv[0],
                         spec.identity ? spec.identity->uid : 0,
                         spec.identity ? spec.identity->gid : 0, why);
    case ChildStage::Exec:
      break;
  }
  return fmt::format("cannot execute {}: {}", spec.argv[0], why);
}

// Whether a live (not zombie) process is in group `pgid`. Zombies do not count: where init
// does not reap orphans (containers), a killed helper stays a zombie for good.
bool group_alive(pid_t pgid) {
  if (::kill(-pgid, 0) != 0) return errno == EPERM;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return true;
  bool alive = false;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    Fd stat(::openat(::dirfd(proc), (std::string(entry->d_name) + "/stat").c_str(),
                     O_RDONLY | O_CLOEXEC));
    if (!stat.valid()) continue;
    std::array<char, 512> buffer{};
    ssize_t size = ::read(stat.get(), buffer.data(), buffer.size() - 1);
    if (size <= 0) continue;
    // "pid (comm) state ppid pgrp …": comm may contain anything, so parse after the last ')'.
    std::string_view text(buffer.data(), static_cast<std::size_t>(size));
    auto close = text.rfind(')');
    if (close == std::string_view::npos) continue;
    char state = 0;
    int ppid = 0;
    int pgrp = 0;
    if (std::sscanf(buffer.data() + close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') {
      alive = true;
      break;
    }
  }
  ::closedir(proc);
  return alive;
}

// Milliseconds for poll() until `until` (Clock::time_point::max() = no limit), at most cap_ms
// unless that is -1 (no cap).
int poll_timeout(Clock::time_point until, Clock::time_point now, int cap_ms) {
  if (until == Clock::time_point::max()) return cap_ms;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  left = std::max<decltype(left)>(left, 0);
  return cap_ms < 0 ? static_cast<int>(std::min<decltype(left)>(left, 1 << 30))
                    : static_cast<int>(std::min<decltype(left)>(left, cap_ms));
}

// Watches one started child: moves its output to the sink, enforces the timeout and kills
// what is left of its process group.
class Supervision {
 public:
  Supervision(pid_t pid, const ProcessSpec& spec, const PosixProcessRunner::Options& options,
              OutputSink& sink, Fd output, Fd captured)
      : pid_(pid),
        spec_(spec),
        options_(options),
        sink_(sink),
        output_(std::move(output)),
        captured_(std::move(captured)),
        pidfd_(::pidfd_open(pid, 0)) {}

  void run(ProcessResult& result);

 private:
  bool pipes_open() const { return output_.valid() || captured_.valid(); }
  void read_from(Fd& fd, bool captured);
  void reap(bool block);
  void terminate_group(Clock::time_point now);
  void finish_group(ProcessResult& result);
  void fill(ProcessResult& result);

  pid_t pid_;
  const ProcessSpec& spec_;
  const PosixProcessRunner::Options& options_;
  OutputSink& sink_;
  Fd output_;
  Fd captured_;
  Fd pidfd_;  // invalid on kernels without pidfd_open: then waitpid is polled
  bool reaped_ = false;
  int wait_status_ = 0;
  bool timed_out_ = false;
  std::optional<Clock::time_point> kill_at_;  // SIGTERM went to the group; SIGKILL then
  bool killed_ = false;
};

void Supervision::read_from(Fd& fd, bool captured) {
  std::array<char, 65536> buffer;
  ssize_t size = ::read(fd.get(), buffer.data(), buffer.size());
  if (size < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (size <= 0) {
    fd.reset();
    return;
  }
  std::string_view bytes(buffer.data(), static_cast<std::size_t>(size));
  if (captured) {
    sink_.on_captured_stdout(bytes);
  } else {
    sink_.on_output(bytes);
  }
}

void Supervision::reap(bool block) {
  pid_t done = 0;
  do {
    done = ::waitpid(pid_, &wait_status_, block ? 0 : WNOHANG);
  } while (done < 0 && errno == EINTR);
  // ECHILD: someone else reaped it (SIGCHLD ignored); the status is then unknown.
  if (done == pid_ || (done < 0 && errno == ECHILD)) {
    if (done < 0) wait_status_ = W_EXITCODE(255, 0);
    reaped_ = true;
    pidfd_.reset();
  }
}

// SIGTERM to the group now, SIGKILL when the grace period ends. Also called when the child
// exited: then the grace period also bounds how long a process outside the group (one that
// left it with setsid) may keep the output pipe open.
void Supervision::terminate_group(Clock::time_point now) {
  if (kill_at_) return;
  ::kill(-pid_, SIGTERM);
  kill_at_ = now + options_.kill_grace;
}

void Supervision::run(ProcessResult& result) {
  std::optional<Clock::time_point> deadline;
  if (spec_.timeout_seconds > 0) {
    deadline = Clock::now() + std::chrono::seconds(spec_.timeout_seconds);
  }
  while (true) {
    auto now = Clock::now();
    if (!reaped_ && !kill_at_ && deadline && now >= *deadline) {
      timed_out_ = true;
      terminate_group(now);
    }
    if (kill_at_ && !killed_ && now >= *kill_at_) {
      ::kill(-pid_, SIGKILL);
      killed_ = true;
    }
    // After SIGKILL, whoever still holds the pipes is not in the group: stop reading.
    if (reaped_ && (killed_ || (!pipes_open() && !group_alive(pid_)))) break;

    std::array<pollfd, 3> fds{};
    std::size_t count = 0;
    if (output_.valid()) fds[count++] = {output_.get(), POLLIN, 0};
    if (captured_.valid()) fds[count++] = {captured_.get(), POLLIN, 0};
    if (pidfd_.valid()) fds[count++] = {pidfd_.get(), POLLIN, 0};
    int cap = -1;
    if (!reaped_ && !pidfd_.valid()) cap = 50;  // no pidfd: poll waitpid
    if (reaped_ && !pipes_open()) cap = 20;     // waiting for the rest of the group
    Clock::time_point until = Clock::time_point::max();
    if (kill_at_ && !killed_) {
      until = *kill_at_;
    } else if (!kill_at_ && deadline) {
      until = *deadline;
    }
    if (killed_ && !reaped_) cap = 20;
    int ready = ::poll(fds.data(), count, poll_timeout(until, now, cap));
    if (ready < 0 && errno != EINTR) {
      // Cannot watch the child any more (ENOMEM): stop it rather than leave it unsupervised.
      ::kill(-pid_, SIGKILL);
      killed_ = true;
      if (!reaped_) reap(true);
      break;
    }
    for (std::size_t i = 0; ready > 0 && i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == output_.get())
        read_from(output_, false);
      else if (fds[i].fd == captured_.get())
        read_from(captured_, true);
      else
        reap(true);
    }
    if (!reaped_ && !pidfd_.valid()) reap(false);
    if (reaped_) terminate_group(Clock::now());
  }
  finish_group(result);
  fill(result);
}

void Supervision::finish_group(ProcessResult& result) {
  // A last bounded read of what is already in the pipes, without waiting for more.
  for (Fd* fd : {&output_, &captured_}) {
    for (int i = 0; i < 16 && fd->valid(); ++i) {
      ::fcntl(fd->get(), F_SETFL, O_NONBLOCK);
      pollfd probe{fd->get(), POLLIN, 0};
      if (::poll(&probe, 1, 0) <= 0) break;
      read_from(*fd, fd == &captured_);
    }
  }
  sink_.finish();
  if (!kill_at_ || !group_alive(pid_)) return;
  if (!killed_) {
    // Members left that closed their output: they got SIGTERM; give them the grace period.
    auto grace_end = *kill_at_;
    while (Clock::now() < grace_end && group_alive(pid_)) ::usleep(20000);
    ::kill(-pid_, SIGKILL);
  }
  auto reap_end = Clock::now() + options_.reap_limit;
  while (Clock::now() < reap_end && group_alive(pid_)) ::usleep(10000);
  if (group_alive(pid_)) {
    result.message = fmt::format("; processes of its group {} survived SIGKILL", pid_);
  }
}

void Supervision::fill(ProcessResult& result) {
  std::string note = std::move(result.message);
  if (WIFEXITED(wait_status_)) result.exit_status = WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) result.signal = WTERMSIG(wait_status_);
  result.timed_out = timed_out_;
  if (timed_out_) {
    result.message = fmt::format("timed out after {} s", spec_.timeout_seconds);
  } else if (result.signal != 0) {
    result.message = fmt::format("killed by signal {}", result.signal);
  } else {
    result.message = fmt::format("exit status {}", result.exit_status);
  }
  result.message += note;
  if (!sink_.log_error().empty()) result.message += "; " + sink_.log_error();
  result.stdout_text = sink_.take_captured_stdout();
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto& text : strings) pointers.push_back(const_cast<char*>(text.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

ProcessResult PosixProcessRunner::run(const ProcessSpec& spec) {
  ProcessResult result;
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    result.message = fmt::format("cannot execute {}: not an absolute path",
                                 spec.argv.empty() ? "(empty command)" : spec.argv[0]);
    return result;
  }
  auto sink = stage2::OutputSink::open(spec);
  if (!sink) {
    result.message = sink.error().message;
    return result;
  }
  auto output = make_pipe();
  auto status = make_pipe();
  Expected<Pipe> captured = spec.capture_stdout ? make_pipe() : Expected<Pipe>(Pipe{});
  for (auto* pipe : {&output, &status, &captured}) {
    if (!*pipe) {
      result.message = pipe->error().message;
      return result;
    }
  }
  std::vector<char*> argv = c_strings(spec.argv);
  std::vector<char*> envp = c_strings(spec.environment);
  const char* work_dir = spec.work_dir.empty() ? nullptr : spec.work_dir.c_str();
  const ProcessIdentity* identity = spec.identity ? &*spec.identity : nullptr;
  int stdout_fd = spec.capture_stdout ? captured->write.get() : output->write.get();

  // Before the fork, so that whatever the step orphans is adopted by bootstate, not init.
  stage2::become_subreaper();
  stage2::ActiveStep active;
  std::optional<stage2::StepCgroup> cgroup;
  if (options_.cgroup_parent) cgroup = stage2::StepCgroup::create(*options_.cgroup_parent);
  // vfork, not fork: fork copies bootstate's page tables and makes every page it writes
  // afterwards fault, a cost that grows with the state held in memory (1.5 ms per step at 1,000
  // applied migrations, issue #17); vfork costs the same at any size. exec_child says what the
  // child may do. All signals blocked meanwhile (see exec_child).
  const ChildArgs child{argv.data(),
                        envp.data(),
                        work_dir,
                        identity,
                        output->write.get(),
                        stdout_fd,
                        status->write.get(),
                        cgroup ? cgroup->procs_fd() : -1};
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = vfork_exec(child);
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    result.message =
        fmt::format("cannot start {}: vfork: {}", spec.argv[0], errno_text(vfork_errno));
    return result;
  }
  output->write.reset();
  captured->write.reset();
  status->write.reset();

  ChildFailure failure;
  ssize_t size = 0;
  do {
    size = ::read(status->read.get(), &failure, sizeof failure);
  } while (size < 0 && errno == EINTR);
  if (size == static_cast<ssize_t>(sizeof failure)) {
    int ignored = 0;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    result.message = failure_message(failure, spec);
    return result;
  }
  result.started = true;
  Supervision supervision(pid, spec, options_, *sink, std::move(output->read),
                          std::move(captured->read));
  supervision.run(result);
  if (cgroup) {
    // Everything the step started, however it detached, ends with the step, also while
    // other steps run.
    auto survivors = cgroup->end_remaining(options_.kill_grace, options_.reap_limit);
    if (!survivors.empty()) {
      result.message +=
          fmt::format("; {} process(es) of its cgroup {} survived SIGKILL (first: {})",
                      survivors.size(), cgroup->path(), survivors.front());
    }
  }
  // Helpers in sessions of their own escaped the group kill; as subreaper bootstate has
  // adopted those whose parents ended. With another step running, its child could not be
  // told from a leftover: the last step to end sweeps.
  auto survivors = active.leave_and_sweep(options_.kill_grace, options_.reap_limit);
  if (!survivors.empty()) {
    result.message += fmt::format("; {} process(es) it started survived SIGKILL (first: {})",
                                  survivors.size(), survivors.front());
  }
  return result;
}

}  // namespace bootstate

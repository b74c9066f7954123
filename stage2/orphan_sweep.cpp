#include "stage2/orphan_sweep.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace bootstate::stage2 {

namespace {

using Clock = std::chrono::steady_clock;

// Guarded by active_mutex: how many steps run, and the children bootstate had before the first
// of them started.
std::mutex active_mutex;
int active_steps = 0;
std::vector<ChildId> baseline_children;

struct StatFields {
  pid_t parent = 0;
  unsigned long long started = 0;
};

// Fields 4 (parent pid) and 22 (start time) of /proc/PID/stat, counted after the last ')':
// the command name may hold spaces and parentheses.
StatFields fields_of(std::string_view stat) {
  StatFields result;
  auto close = stat.rfind(')');
  if (close == std::string::npos) return result;
  // Split by hand, not with std::istringstream: iostreams would link libstdc++'s locale into
  // the program, whose start-up cost every boot pays (core/read_file.hpp).
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3; field <= 22; ++field) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const std::string_view word = rest.substr(0, rest.find_first_of(" \n"));
    rest.remove_prefix(word.size());
    unsigned long long value = 0;
    std::from_chars(word.data(), word.data() + word.size(), value);
    if (field == 4) result.parent = static_cast<pid_t>(value);  // 3 state, 4 ppid
    if (field == 22) result.started = value;
  }
  return result;
}

// Reaps `pid` if it has ended; true when it is gone (reaped, or not our child any more).
bool reap(pid_t pid) {
  int status = 0;
  pid_t done = ::waitpid(pid, &status, WNOHANG);
  return done == pid || (done < 0 && errno == ECHILD);
}

}  // namespace

bool become_subreaper() {
  static const bool done = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
  return done;
}

std::vector<ChildId> children_of_self() {
  std::vector<ChildId> children;
  // No child at all (the common case: the step ended and left nothing): one system call
  // instead of reading the stat of every process of the machine, twice per step (issue #17).
  // WNOWAIT: nothing is reaped here.
  siginfo_t info{};
  if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD) {
    return children;
  }
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* item = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(item->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    // One openat and one read per process (this scan runs twice per step, over every process
    // of the machine): /proc/PID/stat is a few hundred bytes, read whole by one read().
    const std::string name = std::string(item->d_name) + "/stat";
    const int fd = ::openat(::dirfd(proc), name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // ended meanwhile
    char buffer[2048];
    const ssize_t size = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (size <= 0) continue;
    const StatFields fields = fields_of(std::string_view(buffer, static_cast<std::size_t>(size)));
    if (fields.parent == self) children.push_back(ChildId{static_cast<pid_t>(pid), fields.started});
  }
  ::closedir(proc);
  return children;
}

ActiveStep::ActiveStep() {
  std::lock_guard lock(active_mutex);
  if (active_steps++ == 0) baseline_children = children_of_self();
}
ActiveStep::~ActiveStep() {
  if (left_) return;
  std::lock_guard lock(active_mutex);
  --active_steps;
}

std::vector<pid_t> ActiveStep::leave_and_sweep(std::chrono::milliseconds grace,
                                               std::chrono::milliseconds limit) {
  std::lock_guard lock(active_mutex);
  left_ = true;
  if (--active_steps != 0) return {};
  return sweep_leftovers(baseline_children, grace, limit);
}

std::vector<pid_t> sweep_leftovers(const std::vector<ChildId>& before,
                                   std::chrono::milliseconds grace,
                                   std::chrono::milliseconds limit) {
  const std::set<ChildId> earlier(before.begin(), before.end());
  std::set<pid_t> terminated;  // got SIGTERM, when
  auto kill_after = Clock::now() + grace;
  auto give_up = kill_after + limit;
  while (true) {
    std::vector<pid_t> left;
    for (const ChildId& child : children_of_self()) {
      if (earlier.count(child) == 0 && !reap(child.pid)) left.push_back(child.pid);
    }
    if (left.empty()) return {};
    const auto now = Clock::now();
    if (now >= give_up) return left;
    for (pid_t pid : left) {
      // A child that appeared later (adopted from a dying parent) gets its own SIGTERM; once
      // the grace period is over, everything left gets SIGKILL.
      if (now >= kill_after) {
        ::kill(pid, SIGKILL);
      } else if (terminated.insert(pid).second) {
        ::kill(pid, SIGTERM);
        // A stopped process would not act on SIGTERM until continued.
        ::kill(pid, SIGCONT);
      }
    }
    ::usleep(10000);
  }
}

}  // namespace bootstate::stage2

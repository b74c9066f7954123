#include "stage2/orphan_sweep.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace bootstate::stage2 {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> active_steps{0};

struct StatFields {
  pid_t parent = 0;
  unsigned long long started = 0;
};

// Fields 4 (parent pid) and 22 (start time) of /proc/PID/stat, counted after the last ')':
// the command name may hold spaces and parentheses.
StatFields fields_of(const std::string& stat) {
  StatFields result;
  auto close = stat.rfind(')');
  if (close == std::string::npos) return result;
  std::istringstream fields(stat.substr(close + 1));
  std::string skipped;
  fields >> skipped >> result.parent;  // 3 state, 4 ppid
  for (int field = 5; field < 22 && fields >> skipped; ++field) {
  }
  fields >> result.started;
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
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* item = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(item->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream file(std::string("/proc/") + item->d_name + "/stat");
    std::string stat;
    std::getline(file, stat);
    if (stat.empty()) continue;
    const StatFields fields = fields_of(stat);
    if (fields.parent == self) children.push_back(ChildId{static_cast<pid_t>(pid), fields.started});
  }
  ::closedir(proc);
  return children;
}

ActiveStep::ActiveStep() {
  ++active_steps;
}
ActiveStep::~ActiveStep() {
  --active_steps;
}
bool ActiveStep::alone() const {
  return active_steps.load() == 1;
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

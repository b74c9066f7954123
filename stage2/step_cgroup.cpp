#include "stage2/step_cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <string_view>
#include <thread>
#include <utility>

#include "core/error.hpp"
#include "core/read_file.hpp"

namespace bootstate::stage2 {
namespace {

using Clock = std::chrono::steady_clock;

constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC, <linux/magic.h>

bool is_cgroup2(const std::string& directory) {
  struct statfs info {};
  return ::statfs(directory.c_str(), &info) == 0 && info.f_type == kCgroup2Magic;
}

// The unified hierarchy's mount: /sys/fs/cgroup on a v2 system, /sys/fs/cgroup/unified on a
// hybrid one (v1 controllers with systemd's v2 tree beside them).
std::optional<std::string> unified_mount() {
  for (const char* candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (is_cgroup2(candidate)) return std::string(candidate);
  }
  return std::nullopt;
}

bool marked_delegated(const std::string& directory) {
  for (const char* name : {"trusted.delegate", "user.delegate"}) {
    char value[8] = {};
    const ssize_t size = ::getxattr(directory.c_str(), name, value, sizeof value);
    if (size == 1 && value[0] == '1') return true;
  }
  return false;
}

// "populated 0|1" from cgroup.events.
bool populated(const std::string& cgroup) {
  auto events = read_file(cgroup + "/cgroup.events");
  return !events || events->find("populated 0") == std::string::npos;
}

std::vector<int> members(const std::string& cgroup) {
  std::vector<int> pids;
  auto text = read_file(cgroup + "/cgroup.procs");
  if (!text) return pids;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const std::string_view line = rest.substr(0, rest.find('\n'));
    int pid = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc{} && pid > 0) {
      pids.push_back(pid);
    }
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
  }
  return pids;
}

bool wait_until_empty(const std::string& cgroup, Clock::time_point until) {
  while (populated(cgroup)) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

std::optional<std::string> delegated_cgroup(const std::string& proc_self_cgroup) {
  auto text = read_file(proc_self_cgroup);
  if (!text) return std::nullopt;
  // The v2 line is "0::/PATH" (hierarchy id 0, no controllers listed).
  std::string_view rest = *text;
  std::string relative;
  bool found = false;
  while (!rest.empty()) {
    const std::string_view line = rest.substr(0, rest.find('\n'));
    if (line.substr(0, 3) == "0::") {
      relative = std::string(line.substr(3));
      found = true;
    }
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
  }
  if (!found || relative.empty() || relative.front() != '/' ||
      relative.find("/..") != std::string::npos) {
    return std::nullopt;
  }
  auto mount = unified_mount();
  if (!mount) return std::nullopt;
  while (!relative.empty() && relative.back() == '/') relative.pop_back();
  const std::string own = *mount + relative;
  // The mark is on the unit's cgroup; bootstate may run in a subgroup of it (systemd's
  // DelegateSubgroup=). The hierarchy's root is never delegated.
  for (std::string walk = relative; !walk.empty(); walk.erase(walk.rfind('/'))) {
    if (marked_delegated(*mount + walk)) return own;
  }
  return std::nullopt;
}

std::optional<StepCgroup> StepCgroup::create(const std::string& parent) {
  static std::atomic<unsigned> counter{0};
  const std::string path = fmt::format("{}/bootstate-step-{}-{}", parent, ::getpid(), ++counter);
  if (::mkdir(path.c_str(), 0700) != 0) return std::nullopt;
  Fd procs(::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!procs.valid()) {
    ::rmdir(path.c_str());
    return std::nullopt;
  }
  return StepCgroup(path, std::move(procs));
}

StepCgroup::StepCgroup(StepCgroup&& other) noexcept
    : path_(std::exchange(other.path_, {})), procs_(std::move(other.procs_)) {}

StepCgroup& StepCgroup::operator=(StepCgroup&& other) noexcept {
  if (this != &other) {
    path_ = std::exchange(other.path_, {});
    procs_ = std::move(other.procs_);
  }
  return *this;
}

StepCgroup::~StepCgroup() {
  // Empty by now unless something survived SIGKILL; then the directory stays (rmdir fails with
  // EBUSY), named after bootstate's pid, and the message said which pids.
  if (!path_.empty()) ::rmdir(path_.c_str());
}

std::vector<int> StepCgroup::end_remaining(std::chrono::milliseconds grace,
                                           std::chrono::milliseconds limit) {
  procs_.reset();
  if (path_.empty() || !populated(path_)) return {};
  for (int pid : members(path_)) {
    ::kill(pid, SIGTERM);
    ::kill(pid, SIGCONT);  // a stopped process would not act on SIGTERM until continued
  }
  if (wait_until_empty(path_, Clock::now() + grace)) return {};
  // SIGKILL to all, again every 100 ms until empty: what a dying process forked meanwhile too.
  const auto kill_all = [this] {
    Fd kill_file(::open((path_ + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (kill_file.valid() && ::write(kill_file.get(), "1", 1) == 1) return;
    for (int pid : members(path_)) ::kill(pid, SIGKILL);  // kernels before 5.14: no cgroup.kill
  };
  const auto until = Clock::now() + limit;
  do {
    kill_all();
    if (wait_until_empty(path_, std::min(until, Clock::now() + std::chrono::milliseconds(100)))) {
      return {};
    }
  } while (Clock::now() < until);
  return members(path_);
}

}  // namespace bootstate::stage2

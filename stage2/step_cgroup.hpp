// A cgroup per step, where systemd delegated one to bootstate (issue #13 item 14).
//
// Why: a step's helpers may leave its process group (setsid) and, with several steps running
// at once (`--jobs`), the subreaper sweep cannot tell whose leftover an adopted process is
// (stage2/orphan_sweep.hpp). A cgroup holds every process the step started, however it
// detached, and `cgroup.kill` ends them all, without waiting for the other steps.
//
// Where: under bootstate's own cgroup, only when that cgroup (or an ancestor below the
// hierarchy's root) carries systemd's delegation mark, the extended attribute
// `trusted.delegate` (or `user.delegate`) set to "1" (systemd >= 251 sets it for units with
// `Delegate=yes`; the units bootstate ships have it). Writing into a cgroup systemd manages
// without delegation would break its single-writer rule, so without the mark nothing is
// created and the subreaper sweep stays the only mechanism. Only cgroup v2 (the unified
// hierarchy, also found at /sys/fs/cgroup/unified on hybrid systems); no controllers are
// enabled, so bootstate itself may stay in the parent cgroup.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "stage2/fd.hpp"

namespace bootstate::stage2 {

// bootstate's own cgroup directory when it is delegated, else nothing. `proc_self_cgroup` and
// the mount points are parameters for tests; the defaults are the real ones.
std::optional<std::string> delegated_cgroup(
    const std::string& proc_self_cgroup = "/proc/self/cgroup");

class StepCgroup {
 public:
  // A new, empty child cgroup of `parent` for one step, named bootstate-step-PID-N. Nothing
  // (no error: the sweep still works) when it cannot be created.
  static std::optional<StepCgroup> create(const std::string& parent);

  StepCgroup(StepCgroup&& other) noexcept;
  StepCgroup& operator=(StepCgroup&& other) noexcept;
  StepCgroup(const StepCgroup&) = delete;
  StepCgroup& operator=(const StepCgroup&) = delete;
  ~StepCgroup();

  // The open cgroup.procs of this cgroup: the child writes "0" to it between fork and execve
  // (async-signal-safe, before it drops root), which moves it and all it will start inside.
  int procs_fd() const { return procs_.get(); }
  const std::string& path() const { return path_; }

  // After the step's main process ended: SIGTERM (and SIGCONT) to every process still inside,
  // `grace` for them to go, then cgroup.kill (SIGKILL to all), up to `limit` more. Returns the
  // pids still inside after that (uninterruptible sleep). The cgroup is removed once empty.
  std::vector<int> end_remaining(std::chrono::milliseconds grace, std::chrono::milliseconds limit);

 private:
  StepCgroup(std::string path, Fd procs) : path_(std::move(path)), procs_(std::move(procs)) {}
  std::string path_;
  Fd procs_;
};

}  // namespace bootstate::stage2

// Kills what a step left behind outside its process group: a helper that called setsid() (a
// double-forking daemon) escapes the group kill, and without a subreaper it would be adopted by
// init and outlive the step and bootstate.
//
// bootstate makes itself the child subreaper of its process: every orphaned descendant is
// re-parented to bootstate instead of init. When a step has ended and no other step is running,
// every child of bootstate that was not there before the step started is a leftover of the
// step: it gets SIGTERM, then SIGKILL after the grace period, and is reaped; its own children
// become bootstate's and are swept the same way. Children that existed before the step (a
// program embedding the runner may have its own) are left alone.
//
// Where systemd delegated a cgroup to bootstate, each step also has a cgroup of its own
// (stage2/step_cgroup.hpp), which ends a step's leftovers even while other steps run; the
// sweep remains for everything else (no systemd, no delegation) and reaps what the cgroup
// killed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <compare>
#include <string>
#include <vector>

namespace bootstate::stage2 {

// Marks this process as child subreaper (once; later calls do nothing). False when the kernel
// refused (then orphans go to init and the sweep finds none).
bool become_subreaper();

// A process, by pid and start time (clock ticks after boot): a pid reused later differs.
struct ChildId {
  pid_t pid = 0;
  unsigned long long started = 0;
  auto operator<=>(const ChildId&) const = default;
};

// The processes whose parent is this process, read from /proc/*/stat (zombies included).
std::vector<ChildId> children_of_self();

// Counts the steps being run right now, so the sweep does not kill the running child of
// another, concurrent step (`--jobs`): the last step to end sweeps, against the children that
// existed before the first of the steps running together started. Counting, that snapshot and
// the sweep are under one lock: a step starting while another sweeps waits for the sweep, so
// its new child is never taken for a leftover, and of two steps ending together exactly one
// sweeps.
class ActiveStep {
 public:
  ActiveStep();
  // Leaves without sweeping (a step that failed before or at its fork).
  ~ActiveStep();
  ActiveStep(const ActiveStep&) = delete;
  ActiveStep& operator=(const ActiveStep&) = delete;
  // The step ended. When it was the last one running, sweeps (sweep_leftovers) what none of
  // the steps that ran had before; returns the pids that survived.
  std::vector<pid_t> leave_and_sweep(std::chrono::milliseconds grace,
                                     std::chrono::milliseconds limit);

 private:
  bool left_ = false;
};

// Terminates and reaps every child of this process not in `before` (and, as they die, their
// children), with SIGTERM first and SIGKILL after `grace`; gives up after `limit` more. Returns
// the pids that survived (a process in uninterruptible sleep), for the step's message.
std::vector<pid_t> sweep_leftovers(const std::vector<ChildId>& before,
                                   std::chrono::milliseconds grace,
                                   std::chrono::milliseconds limit);

}  // namespace bootstate::stage2

// The one lock around every read-modify-write of the state store.
//
// Why a lock: the store is two slots that each commit rewrites whole from the state the writer
// loaded. Two writers that load the same state and commit one after the other lose the first
// one's change: an `accept` during a `run` was acknowledged and then overwritten by the run's
// next commit, and of two simultaneous `accept`s one could vanish (issue 13, item 11). So `run`
// holds the lock for its whole phase, and accept/decline/retry hold it from load to commit.
// status, preview and history only read (a slot is never half-visible: the two-slot scheme
// gives them the old or the new state) and take no lock.
//
// Where: `/run/bootstate/lock` (under --root: DIR/run/bootstate/lock). /run is a tmpfs that
// exists in the initrd before the ESP or the root file system is mounted, and systemd carries
// it over the switch to the real root, so the initrd phases and stage 2 share one lock; it is
// gone after a reboot, so a lock can never outlive the processes that held it. Not on the ESP:
// in the first initrd phase the ESP is only mounted after the lock is taken (by bootstate
// itself), and every read-only command would otherwise have to create a file on the ESP.
//
// An exclusive flock(2) on an open descriptor: the kernel releases it when the holder exits,
// however it exits (SIGKILL, power cut), so there is no stale lock to clean up. The file's
// content only names the holder (pid, command, since when), for the message a waiter prints.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace bootstate {

// Under --root: DIR + this.
inline constexpr std::string_view kStoreLockPath = "/run/bootstate/lock";

// Whether a bootstate command holds the lock at `path` now, read from /proc/locks: the lock is
// not taken, not even shared for an instant (a `run` starting then would find it busy, wait a
// poll and say so). `run` holds the lock for its whole phase, so while it is held a slot may be
// half written (a reader that found one unusable reads again, cli/state_view.cpp), and a step
// the state shows `running` while nobody holds it was interrupted (`log --follow`). A missing
// file is "not held"; an unreadable /proc/locks "held" (cannot tell).
bool store_lock_held(const std::string& path);

class StoreLock {
 public:
  // Takes the lock at `path` (its directory is created if missing), waiting up to `wait` for
  // another holder to finish. `holder` describes this process for others' messages ("bootstate
  // run --phase post-activation"). `waiting` is called once, with the other holder's
  // description, when the lock is busy at the first try. Errors: InvalidInput (nothing was
  // changed: "... is held by pid 123 (bootstate run ...) ...") when `wait` ran out; Io naming
  // the path when the lock file cannot be created or opened; InvalidInput when the path is a
  // symlink or not a regular file.
  static Expected<StoreLock> acquire(const std::string& path, std::string_view holder,
                                     std::chrono::milliseconds wait,
                                     const std::function<void(const std::string&)>& waiting);

  StoreLock(StoreLock&& other) noexcept;
  StoreLock& operator=(StoreLock&&) = delete;
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  ~StoreLock();  // closing the descriptor releases the lock

 private:
  explicit StoreLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace bootstate

// The real ProcessRunner: runs a child with execve (never a shell), in its own session and
// process group, with exactly the environment of the spec, stdin from /dev/null and its output
// sent to a bounded log, the journal, or a bounded capture.
//
// Why a process group: a step's command may start helpers; a timeout must stop all of them,
// and a helper that keeps the output pipe open must not keep bootstate waiting.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/interfaces.hpp"

namespace bootstate {

class PosixProcessRunner : public ProcessRunner {
 public:
  struct Options {
    // Between SIGTERM and SIGKILL to the child's process group (after a timeout, or when the
    // child exited but other members of its group are still running).
    std::chrono::milliseconds kill_grace{5000};
    // How long to wait after SIGKILL for the group's processes to be gone before reporting
    // that some survived (a process in uninterruptible sleep cannot be killed at once).
    std::chrono::milliseconds reap_limit{2000};
    // Where each run gets a cgroup of its own (stage2/step_cgroup.hpp): bootstate's cgroup
    // when systemd delegated it (`delegated_cgroup()`), else none (the subreaper sweep only).
    std::optional<std::string> cgroup_parent;
  };

  PosixProcessRunner() = default;
  explicit PosixProcessRunner(Options options) : options_(options) {}

  // Runs spec.argv to its end and returns how it ended:
  // - started=false when the child could not be set up or executed; message
  //   "cannot execute /x/y: No such file or directory", "cannot change directory to …: …",
  //   "cannot open log …: …".
  // - message "exit status N", "killed by signal N" or "timed out after N s"; a note is added
  //   when members of the group survived SIGKILL or the log could not be written.
  // When the child exits, members of its process group still running get SIGTERM (then
  // SIGKILL after kill_grace): nothing a step started outlives it in its group. Helpers that
  // left the group (setsid) are adopted by bootstate, the child subreaper, and killed when the
  // step ends, unless another step is running then (stage2/orphan_sweep.hpp). With a
  // delegated cgroup (Options::cgroup_parent) each run has a cgroup of its own, and whatever
  // is left in it gets SIGTERM, then cgroup.kill, when the run ends.
  // Thread-safe in the sense that several runs may proceed concurrently; the child does only
  // async-signal-safe calls between fork and execve.
  ProcessResult run(const ProcessSpec& spec) override;

 private:
  Options options_;
};

}  // namespace bootstate

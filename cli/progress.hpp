// Progress of a running step where the operator looks during a boot (issue #16, item 4): the
// unit's status line (sd_notify STATUS=), Plymouth's message line when Plymouth runs, and
// stderr when bootstate runs on a terminal. At the start of a step, every heartbeat while it
// runs (elapsed time, and the step's own percentage when it writes one to $BOOTSTATE_PROGRESS),
// and at its end.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/phase_runner.hpp"

namespace bootstate::cli {

// Where a step's percentage is: BOOTSTATE_PROGRESS of its environment, in its work directory
// (stage2/command_step.cpp sets the variable to the same path).
std::string progress_file(const std::string& work_dir);

// "45 %" / "45 %, copying tables" from the file's first line ("45" or "45 copying tables");
// empty when the file is missing or does not start with a number 0–100.
std::string read_progress(const std::string& path);

// "1 min 20 s", "12 s".
std::string elapsed_text(std::chrono::steady_clock::duration elapsed);

// An EventSink in front of another (the journal): forwards everything, and reports progress
// around each step. The heartbeat runs on its own thread while steps run; with `--jobs` several
// steps run at once, and each has its own start, heartbeat and end lines. All calls but the
// heartbeat come from the phase runner's one thread.
class ProgressReporter final : public EventSink {
 public:
  // plymouth_pid_file: present while Plymouth runs (/run/plymouth/pid, re-rooted under --root).
  // to_stderr: also print progress lines on stderr (a person at a terminal).
  // console: where the lines go when Plymouth does not run and a unit runs bootstate
  // (/dev/console, re-rooted; empty = nowhere): the serial or VGA console an operator watches
  // during a boot, where systemd prints its own status (the journal is not on it).
  ProgressReporter(EventSink& inner, std::string plymouth_pid_file, bool to_stderr,
                   std::string console = {});
  ~ProgressReporter() override;
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void event(Event event, std::string_view text) override;
  void status(std::string_view text) override { inner_.status(text); }
  void extend_timeout(std::uint64_t usec) override { inner_.extend_timeout(usec); }

  // The phase runner asks for a step's paths right before it runs it (after StepStarted):
  // which step it is and where its progress file is.
  void step_paths(std::string_view migration, std::string_view step, const std::string& work_dir);

 private:
  struct Running {
    std::string label;  // migration "M" step "S" (or undo of …)
    std::string progress_path;
    std::chrono::steady_clock::time_point started;
  };

  void report(const std::string& text);
  void heartbeat_loop();
  void stop_heartbeat();

  EventSink& inner_;
  std::string plymouth_pid_file_;
  bool to_stderr_;
  std::string console_;
  std::chrono::milliseconds interval_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread heartbeat_;
  bool beating_ = false;          // the heartbeat thread runs and should go on
  std::vector<Running> running_;  // the steps running now, in the order they started
};

}  // namespace bootstate::cli

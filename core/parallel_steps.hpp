// Steps running at once (issue #15 item 4): each on a thread of its own that blocks on its own
// child process, while the phase runner's thread alone decides, commits and reports. The threads
// run nothing but the executor call they are given; every commit, event and state change stays
// on the runner's thread, so the store, the event sink and the engine need no locking.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/engine.hpp"
#include "core/interfaces.hpp"

namespace bootstate {

class StepThreads {
 public:
  StepThreads() = default;
  // Waits for every thread still running: a step is never left running unsupervised, even when
  // the runner stops with an error (its outcome is then not committed; the next boot resumes it
  // by the resume table, as after a power cut).
  ~StepThreads();
  StepThreads(const StepThreads&) = delete;
  StepThreads& operator=(const StepThreads&) = delete;

  // Runs `work` on a new thread; `token` names it in wait_one()'s answer.
  void start(std::size_t token, std::function<StepOutcome()> work);
  // Blocks until a started step has finished, and returns its token and outcome. Only when
  // running() > 0.
  std::pair<std::size_t, StepOutcome> wait_one();
  // Started and not yet returned by wait_one().
  std::size_t running() const { return running_; }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<std::pair<std::size_t, StepOutcome>> finished_;  // guarded by mutex_
  std::map<std::size_t, std::thread> threads_;  // joined once wait_one() returned them
  std::size_t running_ = 0;
};

// One step started in parallel: its decision, and what its executor reads on its thread. The
// context points at `record`, a copy of the step's record: the runner replaces its state at every
// commit while the step runs.
struct StepFlight {
  Decision decision;
  StepRecord record;
  StepContext context;
  StepExecutor* executor = nullptr;  // nullptr: the step fails with `error` without running
  std::string error;
};

// What run_in_parallel() asks of the phase runner; all of it is called on the runner's thread.
class ParallelDriver {
 public:
  virtual ~ParallelDriver() = default;
  // Commits the step's start and prepares `flight` (decision set) to run. An error: the commit
  // failed, the step did not start.
  virtual Expected<void> start(StepFlight& flight) = 0;
  // Commits the step's end.
  virtual Expected<void> finish(const Decision& decision, const StepOutcome& outcome) = 0;
  // startable_steps() on the state as committed now.
  virtual std::vector<Decision> more(const std::vector<std::string_view>& in_flight,
                                     std::size_t room) = 0;
};

// Runs `batch` at once and, after each step's end, what more() adds, at most `jobs` at a time,
// until none runs. After a failed commit nothing more starts and the running steps are waited
// for (not recorded: the next boot resumes them as after a power cut); the error is returned.
Expected<void> run_in_parallel(std::vector<Decision> batch, std::size_t jobs,
                               ParallelDriver& driver);

}  // namespace bootstate

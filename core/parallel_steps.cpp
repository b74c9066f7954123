#include "core/parallel_steps.hpp"

#include <algorithm>

namespace bootstate {

StepThreads::~StepThreads() {
  for (auto& [token, thread] : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void StepThreads::start(std::size_t token, std::function<StepOutcome()> work) {
  ++running_;
  threads_[token] = std::thread([this, token, work = std::move(work)] {
    StepOutcome outcome = work();
    {
      std::lock_guard lock(mutex_);
      finished_.emplace_back(token, std::move(outcome));
    }
    done_.notify_one();
  });
}

std::pair<std::size_t, StepOutcome> StepThreads::wait_one() {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return !finished_.empty(); });
  // The earliest to finish first: its commit is the next one.
  std::pair<std::size_t, StepOutcome> first = std::move(finished_.front());
  finished_.erase(finished_.begin());
  --running_;
  lock.unlock();
  // Its thread has handed over its outcome and is ending: joined here, so a phase of many
  // steps does not keep a thread per step until the end.
  auto thread = threads_.find(first.first);
  if (thread != threads_.end()) {
    thread->second.join();
    threads_.erase(thread);
  }
  return first;
}

Expected<void> run_in_parallel(std::vector<Decision> batch, std::size_t jobs,
                               ParallelDriver& driver) {
  std::map<std::size_t, StepFlight> flights;  // by token; node-based: a thread's flight stays put
  std::size_t next_token = 0;
  Expected<void> result;
  StepThreads threads;  // declared after `flights`: joined before the flights are destroyed
  auto start = [&](Decision decision) -> Expected<void> {
    const std::size_t token = next_token++;
    StepFlight& flight = flights[token];
    flight.decision = std::move(decision);
    if (auto started = driver.start(flight); !started) {
      flights.erase(token);
      return started;
    }
    threads.start(token, [&flight] {
      if (flight.executor == nullptr) {
        StepOutcome outcome;
        outcome.message = flight.error;
        return outcome;
      }
      return flight.executor->run(flight.context);
    });
    return {};
  };
  for (Decision& decision : batch) {
    if (result = start(std::move(decision)); !result) break;
  }
  while (threads.running() > 0) {
    auto [token, outcome] = threads.wait_one();
    auto found = flights.find(token);
    const Decision decision = std::move(found->second.decision);
    flights.erase(found);
    if (!result) continue;  // a commit failed: only let the others end
    if (result = driver.finish(decision, outcome); !result) continue;
    std::vector<std::string_view> in_flight;
    for (const auto& [other_token, other] : flights) {
      in_flight.push_back(other.decision.migration->id);
    }
    const std::size_t room = jobs - std::min(jobs, flights.size());
    for (Decision& more : driver.more(in_flight, room)) {
      if (result = start(std::move(more)); !result) break;
    }
  }
  return result;
}

}  // namespace bootstate

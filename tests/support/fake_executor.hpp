// Strict, synchronous fakes for the step executors and the backup store: they record what ran,
// in order, and return the outcomes a test scripts for each step. The executor may be called
// from several threads at once (`--jobs`): its records are guarded by a mutex.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate::testing {

// A mutex a copyable fake can hold: a copy gets a mutex of its own (tests copy machines).
struct FakeMutex {
  FakeMutex() = default;
  FakeMutex(const FakeMutex&) {}
  FakeMutex& operator=(const FakeMutex&) { return *this; }
  void lock() { mutex.lock(); }
  void unlock() { mutex.unlock(); }
  std::mutex mutex;
};

class FakeExecutor final : public StepExecutor {
 public:
  // "migration/step" → outcome of the next run (default: success). Consumed in order, the last
  // one repeats.
  void script(const std::string& key, std::vector<StepOutcome> outcomes) {
    scripted_[key] = std::move(outcomes);
  }
  void fail(const std::string& key, std::string message) {
    StepOutcome outcome;
    outcome.message = std::move(message);
    outcome.exit_status = 1;
    script(key, {outcome});
  }
  // What check() answers for "migration/step" (default: Applied iff it ran to success before).
  void check_answer(const std::string& key, CheckResult result) { checks_[key] = result; }

  StepOutcome run(const StepContext& context) override;
  CheckResult check(const StepContext& context) override;
  StepOutcome revert(const StepContext& context) override;
  StepPreview describe(const StepContext& context) override;

  // Every run/revert/check in order: "run:m/s", "revert:m/s", "check:m/s".
  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // How many times "m/s" ran to success (its effect was applied).
  int applied(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto found = applied_.find(key);
    return found == applied_.end() ? 0 : found->second;
  }
  // Called at the start of every run() with "m/s", outside the lock: a test blocks a step here
  // to see which steps run at the same time.
  std::function<void(const std::string&)> on_run;
  std::vector<StepRecord> records_seen;  // the step record each run() was given (copied)

 private:
  std::map<std::string, std::vector<StepOutcome>> scripted_;
  std::map<std::string, CheckResult> checks_;
  std::map<std::string, int> applied_;
  std::vector<std::string> calls_;
  mutable FakeMutex mutex_;
};

class FakeBackupStore final : public BackupStore {
 public:
  Expected<void> snapshot(std::string_view migration_id,
                          const std::vector<std::string>& paths) override;
  Expected<std::vector<std::string>> restore(std::string_view migration_id,
                                             std::uint64_t attempt) override;
  Expected<void> discard(std::string_view migration_id) override;

  void fail_snapshots(bool fail) { fail_snapshots_ = fail; }
  // "snapshot:m", "restore:m", "discard:m" in order.
  const std::vector<std::string>& calls() const { return calls_; }
  bool has(const std::string& migration_id) const { return snapshots_.count(migration_id) > 0; }

 private:
  std::set<std::string> snapshots_;
  std::vector<std::string> calls_;
  bool fail_snapshots_ = false;
};

}  // namespace bootstate::testing

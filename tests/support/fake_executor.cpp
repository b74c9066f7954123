#include "tests/support/fake_executor.hpp"

namespace bootstate::testing {
namespace {

std::string key_of(const StepContext& context) {
  return context.migration->id + "/" + context.step->id;
}

}  // namespace

StepOutcome FakeExecutor::run(const StepContext& context) {
  std::string key = key_of(context);
  if (on_run) on_run(key);
  std::lock_guard lock(mutex_);
  calls_.push_back("run:" + key);
  records_seen.push_back(context.record != nullptr ? *context.record : StepRecord{});
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message = "exit status 0";
  auto found = scripted_.find(key);
  if (found != scripted_.end() && !found->second.empty()) {
    outcome = found->second.front();
    if (found->second.size() > 1) found->second.erase(found->second.begin());
  }
  if (outcome.ok && !outcome.awaiting_reboot) applied_[key] += 1;
  return outcome;
}

CheckResult FakeExecutor::check(const StepContext& context) {
  std::string key = key_of(context);
  std::lock_guard lock(mutex_);
  calls_.push_back("check:" + key);
  auto found = checks_.find(key);
  if (found != checks_.end()) return found->second;
  auto applied = applied_.find(key);
  return applied != applied_.end() && applied->second > 0 ? CheckResult::Applied
                                                          : CheckResult::NotApplied;
}

StepOutcome FakeExecutor::revert(const StepContext& context) {
  std::lock_guard lock(mutex_);
  calls_.push_back("revert:" + key_of(context));
  records_seen.push_back(context.record != nullptr ? *context.record : StepRecord{});
  StepOutcome outcome;
  outcome.ok = true;
  outcome.message = "reverted";
  return outcome;
}

StepPreview FakeExecutor::describe(const StepContext& context) {
  StepPreview preview;
  preview.lines.push_back("would run " + key_of(context));
  return preview;
}

Expected<void> FakeBackupStore::snapshot(std::string_view migration_id,
                                         const std::vector<std::string>&) {
  calls_.push_back("snapshot:" + std::string(migration_id));
  if (fail_snapshots_) return make_error(ErrorCode::Io, "snapshot failed: disk full");
  snapshots_.insert(std::string(migration_id));
  return {};
}

Expected<std::vector<std::string>> FakeBackupStore::restore(std::string_view migration_id,
                                                            std::uint64_t /*attempt*/) {
  calls_.push_back("restore:" + std::string(migration_id));
  if (!has(std::string(migration_id))) {
    return make_error(ErrorCode::NotFound, "no snapshot of {}", migration_id);
  }
  return std::vector<std::string>{};
}

Expected<void> FakeBackupStore::discard(std::string_view migration_id) {
  calls_.push_back("discard:" + std::string(migration_id));
  snapshots_.erase(std::string(migration_id));
  return {};
}

}  // namespace bootstate::testing

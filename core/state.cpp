// The words of the persisted state's enums, in one place so the codec, status and history print
// exactly what the store reads back. These words are part of the on-disk format (state_codec.hpp):
// a word may be added, never renamed or reused.
#include "core/state.hpp"

#include "core/name_table.hpp"

namespace bootstate {
namespace {

constexpr NameTable<StepState, 5> kStepStateNames{{
    {StepState::Pending, "pending"},
    {StepState::Running, "running"},
    {StepState::Done, "done"},
    {StepState::Failed, "failed"},
    {StepState::Skipped, "skipped"},
}};

constexpr NameTable<MigrationState, 6> kMigrationStateNames{{
    {MigrationState::Pending, "pending"},
    {MigrationState::Running, "running"},
    {MigrationState::Applied, "applied"},
    {MigrationState::Failed, "failed"},
    {MigrationState::Declined, "declined"},
    {MigrationState::Undone, "undone"},
}};

constexpr NameTable<AttemptState, 4> kAttemptStateNames{{
    {AttemptState::InProgress, "in-progress"},
    {AttemptState::Complete, "complete"},
    {AttemptState::Failed, "failed"},
    {AttemptState::Abandoned, "abandoned"},
}};

constexpr NameTable<OperatorDecision, 3> kDecisionNames{{
    {OperatorDecision::None, "none"},
    {OperatorDecision::Accepted, "accepted"},
    {OperatorDecision::Declined, "declined"},
}};

bool ever_started(const std::vector<StepRecord>& steps) {
  for (const StepRecord& step : steps) {
    // attempts counts starts; a `running`/`done`/`failed` record without one can only come from
    // a hand-edited or older state, and it still means the machine may have been changed.
    if (step.attempts > 0 || step.state == StepState::Running || step.state == StepState::Done ||
        step.state == StepState::Failed) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view to_string(StepState state) {
  return name_of(kStepStateNames, state);
}
std::optional<StepState> parse_step_state(std::string_view text) {
  return value_of(kStepStateNames, text);
}

std::string_view to_string(MigrationState state) {
  return name_of(kMigrationStateNames, state);
}
std::optional<MigrationState> parse_migration_state(std::string_view text) {
  return value_of(kMigrationStateNames, text);
}

std::string_view to_string(AttemptState state) {
  return name_of(kAttemptStateNames, state);
}
std::optional<AttemptState> parse_attempt_state(std::string_view text) {
  return value_of(kAttemptStateNames, text);
}

std::string_view to_string(OperatorDecision decision) {
  return name_of(kDecisionNames, decision);
}
std::optional<OperatorDecision> parse_operator_decision(std::string_view text) {
  return value_of(kDecisionNames, text);
}

bool MigrationRecord::touched() const {
  return backup_taken || ever_started(steps) || ever_started(undo_steps);
}

void RecordIndex::clear() {
  first_.clear();
  data_ = nullptr;
  covered_ = 0;
  usable_ = false;
}

std::size_t RecordIndex::find(const std::vector<MigrationRecord>& records, std::string_view id) {
  constexpr std::size_t npos = static_cast<std::size_t>(-1);
  auto scan = [&] {
    for (std::size_t at = 0; at < records.size(); ++at) {
      if (records[at].id == id) return at;
    }
    return npos;
  };
  if (!usable_ || data_ != records.data() || covered_ > records.size()) {
    // Built anew when the records moved or fewer are left (a record was forgotten).
    clear();
    data_ = records.data();
    usable_ = true;
  }
  for (; covered_ < records.size() && usable_; ++covered_) {
    // An id twice (a hand-edited state): "first" needs the scan, and the index is not used.
    usable_ = first_.emplace(records[covered_].id, covered_).second;
  }
  if (!usable_) return scan();
  auto found = first_.find(id);
  // A hit is trusted only when the record there still has the id (records may have been
  // forgotten and others appended since it was made); ids are unique, so it is the first.
  if (found != first_.end() && found->second < records.size() && records[found->second].id == id) {
    return found->second;
  }
  // Not indexed (or moved): the scan is the answer; what it finds is remembered.
  const std::size_t at = scan();
  if (at != npos) first_.insert_or_assign(std::string(id), at);
  return at;
}

MigrationRecord* State::find(std::string_view id) {
  const std::size_t at = record_index.find(migrations, id);
  return at == static_cast<std::size_t>(-1) ? nullptr : &migrations[at];
}

const MigrationRecord* State::find(std::string_view id) const {
  const std::size_t at = record_index.find(migrations, id);
  return at == static_cast<std::size_t>(-1) ? nullptr : &migrations[at];
}

}  // namespace bootstate

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

MigrationRecord* State::find(std::string_view id) {
  for (MigrationRecord& record : migrations) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

const MigrationRecord* State::find(std::string_view id) const {
  for (const MigrationRecord& record : migrations) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

}  // namespace bootstate

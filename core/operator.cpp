#include "core/operator.hpp"

#include "core/transitions.hpp"

namespace bootstate {
namespace {

Error invalid(std::string message) {
  return Error{ErrorCode::InvalidInput, std::move(message)};
}

MigrationRecord& record_for(State& state, const Migration& migration) {
  if (MigrationRecord* record = state.find(migration.id)) return *record;
  MigrationRecord record;
  record.id = migration.id;
  record.policy = migration.policy;
  state.migrations.push_back(record);
  return state.migrations.back();
}

Error unknown(std::string_view id, const State& state) {
  if (state.find(id) != nullptr) {
    return invalid(fmt::format("migration \"{}\" is not in the booted plan", id));
  }
  return invalid(fmt::format("unknown migration \"{}\" (not in the booted plan or the state)", id));
}

}  // namespace

Expected<State> accept_migration(State state, const Plan& plan, std::string_view id) {
  const Migration* migration = plan.find(id);
  if (migration == nullptr) return unknown(id, state);
  if (migration->policy == Policy::Required) {
    return invalid(fmt::format("migration \"{}\" is required: it runs without being accepted", id));
  }
  MigrationRecord& record = record_for(state, *migration);
  if (record.decision == OperatorDecision::Accepted) return state;  // already: idempotent
  if (record.state == MigrationState::Declined) {
    record.state = *next_state(record.state, MigrationEvent::Reset);
  }
  record.decision = OperatorDecision::Accepted;
  return state;
}

Expected<State> decline_migration(State state, const Plan& plan, std::string_view id) {
  const Migration* migration = plan.find(id);
  if (migration == nullptr) {
    MigrationRecord* stale = state.find(id);
    if (stale == nullptr || stale->state == MigrationState::Undone) return unknown(id, state);
    // A stale migration: its effect stays, bootstate stops trying to undo it.
    stale->decision = OperatorDecision::Declined;
    stale->message = "undo declined by the operator: its effect is kept";
    return state;
  }
  if (migration->policy == Policy::Required) {
    return invalid(fmt::format("migration \"{}\" is required and cannot be declined", id));
  }
  MigrationRecord& record = record_for(state, *migration);
  if (record.decision == OperatorDecision::Declined) return state;
  if (record.touched()) {
    return invalid(fmt::format("migration \"{}\" has already started ({}): it cannot be declined",
                               id, to_string(record.state)));
  }
  auto declined = next_state(record.state, MigrationEvent::Decline);
  if (!declined) return invalid(declined.error().message);
  record.state = *declined;
  record.decision = OperatorDecision::Declined;
  return state;
}

Expected<State> retry_migration(State state, const Plan& plan, std::string_view id) {
  MigrationRecord* record = state.find(id);
  if (record == nullptr) return unknown(id, state);
  if (record->state != MigrationState::Failed) {
    return invalid(
        fmt::format("migration \"{}\" has not failed (it is {})", id, to_string(record->state)));
  }
  for (auto* steps : {&record->steps, &record->undo_steps}) {
    for (StepRecord& step : *steps) {
      if (step.state == StepState::Failed) step.state = *next_state(step.state, StepEvent::Reset);
    }
  }
  const bool stale = plan.find(id) == nullptr;
  // A failed undo goes back to undoing; a failed forward migration back to pending/running.
  record->state =
      stale ? MigrationState::Running : *next_state(record->state, MigrationEvent::Reset);
  if (!stale) {
    bool any_done = false;
    for (const StepRecord& step : record->steps)
      any_done = any_done || step.state == StepState::Done;
    if (any_done) record->state = MigrationState::Running;
  }
  record->message = "retry requested by the operator";
  if (state.attempt && state.attempt->state == AttemptState::Failed &&
      state.attempt->generation == plan.generation) {
    state.attempt->state = *next_state(state.attempt->state, AttemptEvent::Reopen);
    state.attempt->reason.clear();
    state.attempt->boots_without_progress = 0;
  }
  return state;
}

}  // namespace bootstate

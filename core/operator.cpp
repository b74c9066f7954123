// Operator decisions as pure state changes. Every state change goes through the transition
// tables (a pair missing from them is a bug, reported as one, never a direct write).
#include "core/operator.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/engine.hpp"
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

// The required migration that runs after `id`, directly or through others, with the one it
// follows `id` through (empty when direct); nullopt when none does. Iterative: `after` chains
// may be 100,000 long.
struct Dependent {
  const Migration* required = nullptr;
  std::string through;
};
std::optional<Dependent> required_dependent(const Plan& plan, std::string_view id) {
  const std::size_t count = plan.migrations.size();
  const std::vector<std::vector<std::size_t>> followers = followers_of(plan);
  const std::size_t start = plan.index.find(id)->second;
  std::vector<std::size_t> parent(count, count);  // count = not reached
  std::vector<std::size_t> queue{start};
  parent[start] = start;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    for (std::size_t follower : followers[queue[head]]) {
      if (parent[follower] != count) continue;
      parent[follower] = queue[head];
      if (plan.migrations[follower].policy == Policy::Required) {
        Dependent dependent{&plan.migrations[follower], {}};
        if (queue[head] != start) dependent.through = plan.migrations[queue[head]].id;
        return dependent;
      }
      queue.push_back(follower);
    }
  }
  return std::nullopt;
}

// Held after a store loss (docs/DESIGN.md "Nothing lost"): only then may a required migration
// be accepted, which is the operator's word that its steps may run.
bool held(const Plan& plan, const State& state, std::string_view id) {
  for (const MigrationView& view : plan_view(plan, state)) {
    if (view.migration->id == id) return view.readiness == Readiness::Held;
  }
  return false;
}

// The failed attempt of `plan`'s generation goes on (the operator answered what stopped it).
Expected<void> reopen_failed_attempt(State& state, const Plan& plan) {
  if (state.attempt && state.attempt->state == AttemptState::Failed &&
      state.attempt->generation == plan.generation) {
    BOOTSTATE_TRY(advance(state.attempt->state, AttemptEvent::Reopen));
    state.attempt->reason.clear();
    state.attempt->boots_without_progress = 0;
  }
  return {};
}

}  // namespace

Expected<State> accept_migration(State state, const Plan& plan, std::string_view id) {
  const Migration* migration = plan.find(id);
  if (migration == nullptr) return unknown(id, state);
  const bool was_held = held(plan, state, id);
  if (migration->policy == Policy::Required && !was_held) {
    return invalid(fmt::format("migration \"{}\" is required: it runs without being accepted", id));
  }
  MigrationRecord& record = record_for(state, *migration);
  if (record.decision == OperatorDecision::Accepted) return state;  // already: idempotent
  if (record.state == MigrationState::Declined) {
    if (auto reset = advance(record.state, MigrationEvent::Reset); !reset) return reset.error();
  }
  record.decision = OperatorDecision::Accepted;
  // Held work keeps the attempt open, but boots without an answer end it through the loop
  // breaker: the answer that releases the work lets that attempt go on, as `retry` does (the
  // failed attempt of a plan only goes on when the operator says so).
  if (was_held) BOOTSTATE_TRY(reopen_failed_attempt(state, plan));
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
  // Declining it would leave required work that can never run (issue #13 item 3).
  if (auto dependent = required_dependent(plan, id)) {
    return invalid(fmt::format(
        "migration \"{}\" cannot be declined: required migration \"{}\" runs after it{}", id,
        dependent->required->id,
        dependent->through.empty() ? "" : fmt::format(" (through \"{}\")", dependent->through)));
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

bool fell_back_from(const State& state, std::string_view generation) {
  if (generation.empty() || (state.attempt && state.attempt->generation == generation)) {
    return false;
  }
  for (auto attempt = state.history.rbegin(); attempt != state.history.rend(); ++attempt) {
    if (attempt->generation == generation) return attempt->state == AttemptState::Failed;
  }
  return false;
}

Expected<State> retry_check(State state, const Plan& plan, std::string_view id) {
  if (plan.find_check(id) == nullptr) {
    return invalid(
        fmt::format("unknown check \"{}\" (not in the plan of {})", id, plan.generation));
  }
  const Attempt* attempt = state.attempt ? &*state.attempt : nullptr;
  if (attempt == nullptr || attempt->generation != plan.generation ||
      attempt->state != AttemptState::Failed) {
    return invalid(
        fmt::format("check \"{}\": no failed attempt of {} to retry{}", id, plan.generation,
                    attempt != nullptr && attempt->generation == plan.generation &&
                            attempt->state == AttemptState::InProgress
                        ? " (its attempt is in progress: the check runs again at its next boot)"
                        : ""));
  }
  BOOTSTATE_TRY(reopen_failed_attempt(state, plan));
  return state;
}

Expected<State> retry_migration(State state, const Plan& plan, std::string_view id) {
  // After the fallback the generation's next boot starts a new attempt, which runs the work
  // (and the checks) again: nothing to change here, the caller re-arms its boot entries.
  if (fell_back_from(state, plan.generation) &&
      (plan.find(id) != nullptr || plan.find_check(id) != nullptr)) {
    return state;
  }
  MigrationRecord* record = state.find(id);
  // A check has no record: retrying it means running the failed attempt again, checks first.
  if (record == nullptr && plan.find_check(id) != nullptr) return retry_check(state, plan, id);
  if (record == nullptr) return unknown(id, state);
  if (record->state != MigrationState::Failed) {
    return invalid(
        fmt::format("migration \"{}\" has not failed (it is {})", id, to_string(record->state)));
  }
  for (auto* steps : {&record->steps, &record->undo_steps}) {
    for (StepRecord& step : *steps) {
      if (step.state == StepState::Failed) BOOTSTATE_TRY(advance(step.state, StepEvent::Reset));
    }
  }
  const bool stale = plan.find(id) == nullptr;
  if (stale) {
    // A failed undo goes back to undoing.
    BOOTSTATE_TRY(advance(record->state, MigrationEvent::Undo));
  } else {
    // A failed forward migration starts over from pending, or goes on running when some of its
    // steps are done (their effect is on the machine).
    BOOTSTATE_TRY(advance(record->state, MigrationEvent::Reset));
    const bool any_done =
        std::any_of(record->steps.begin(), record->steps.end(),
                    [](const StepRecord& step) { return step.state == StepState::Done; });
    if (any_done) BOOTSTATE_TRY(advance(record->state, MigrationEvent::Start));
  }
  record->message = "retry requested by the operator";
  BOOTSTATE_TRY(reopen_failed_attempt(state, plan));
  return state;
}

Expected<State> cancel_attempt(State state, std::int64_t now_usec) {
  if (!state.attempt) return invalid("there is no attempt to cancel");
  Attempt& attempt = *state.attempt;
  // Cancelled already: the same answer again (the caller finishes what an interrupted cancel
  // began, the undo of a live switch).
  if (attempt_cancelled(state)) return state;
  if (attempt.state != AttemptState::InProgress) {
    return invalid(
        fmt::format("attempt {} ({}) is {}: only an attempt in progress can be cancelled{}",
                    attempt.number, attempt.generation, to_string(attempt.state),
                    attempt.state == AttemptState::Failed
                        ? "; booting the last good generation undoes what it did"
                        : ""));
  }
  BOOTSTATE_TRY(advance(attempt.state, AttemptEvent::Abandon));
  attempt.reason = "cancelled by the operator";
  attempt.finished_usec = now_usec;
  return state;
}

}  // namespace bootstate

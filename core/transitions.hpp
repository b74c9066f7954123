// Every state change of a step, a migration and an attempt is one row of a table in
// transitions.cpp. A (state, event) pair that is not in a table is a bug in bootstate, and the
// functions below say so instead of guessing (Mender's AddTransition table, CONVENTIONS.md).
#pragma once

#include <span>
#include <string_view>

#include "core/error.hpp"
#include "core/state.hpp"

namespace bootstate {

enum class StepEvent : std::uint8_t {
  Start,            // committed before the step runs (semantics 3)
  Succeed,          // the step reported success
  Fail,             // the step reported failure (or was interrupted and cannot be resumed)
  CheckApplied,     // after an interruption, its check says the effect is in place
  CheckNotApplied,  // after an interruption, its check says it is not (or cannot tell): run it
  Skip,             // the migration was declined before this step ran
  Reset,            // operator `retry`, or a stale migration that is brought back
};

enum class MigrationEvent : std::uint8_t {
  Start,     // its first (undo) step or backup started
  Complete,  // its last step is done
  Fail,      // a step failed
  Decline,   // operator `decline` before it started
  Undo,      // its undo started (it is stale)
  Undone,    // its undo finished
  Reset,     // operator `retry`/`accept`, or it reappeared in a plan after being undone
};

enum class AttemptEvent : std::uint8_t {
  Complete,  // no work left in the plan (semantics 7)
  Fail,      // a required step failed (semantics 4) or the loop breaker fired (semantics 6)
  Abandon,   // another generation booted while it was incomplete (semantics 5)
  Reopen,    // new work appeared for the same plan (operator accept/retry)
};

std::string_view to_string(StepEvent event);
std::string_view to_string(MigrationEvent event);
std::string_view to_string(AttemptEvent event);

// The next state, or an error naming the impossible pair ("bug: step cannot go from done on
// start").
Expected<StepState> next_state(StepState state, StepEvent event);
Expected<MigrationState> next_state(MigrationState state, MigrationEvent event);
Expected<AttemptState> next_state(AttemptState state, AttemptEvent event);

// `state` moves by `event` through the transition table: the one way a state changes. A pair
// missing from the table is an error (a bug in bootstate), never a guess.
template <typename StateEnum, typename Event>
Expected<void> advance(StateEnum& state, Event event) {
  auto next_value = next_state(state, event);
  if (!next_value) return next_value.error();
  state = *next_value;
  return {};
}

// The tables themselves, so a test can walk every row (and every pair that is not one).
template <typename State, typename Event>
struct TransitionRow {
  State from;
  Event event;
  State to;
};
std::span<const TransitionRow<StepState, StepEvent>> step_transitions();
std::span<const TransitionRow<MigrationState, MigrationEvent>> migration_transitions();
std::span<const TransitionRow<AttemptState, AttemptEvent>> attempt_transitions();

}  // namespace bootstate

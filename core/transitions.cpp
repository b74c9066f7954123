#include "core/transitions.hpp"

#include <array>

namespace bootstate {
namespace {

template <typename State, typename Event>
using Row = TransitionRow<State, Event>;

using S = StepState;
using SE = StepEvent;
constexpr std::array<Row<S, SE>, 10> kStepTable{{
    {S::Pending, SE::Start, S::Running},
    {S::Running, SE::Start, S::Running},  // re-run after an interruption (idempotent or check)
    {S::Running, SE::Succeed, S::Done},
    {S::Running, SE::Fail, S::Failed},
    {S::Running, SE::CheckApplied, S::Done},
    {S::Running, SE::CheckNotApplied, S::Pending},  // the next decision runs it
    {S::Pending, SE::Skip, S::Skipped},
    {S::Failed, SE::Reset, S::Pending},
    {S::Done, SE::Reset, S::Pending},  // an undone migration brought back by a plan
    {S::Skipped, SE::Reset, S::Pending},
}};

using M = MigrationState;
using ME = MigrationEvent;
constexpr std::array<Row<M, ME>, 16> kMigrationTable{{
    {M::Pending, ME::Start, M::Running},
    {M::Running, ME::Start, M::Running},
    {M::Pending, ME::Complete, M::Applied},  // every step was already in effect
    {M::Running, ME::Complete, M::Applied},
    {M::Running, ME::Fail, M::Failed},
    {M::Pending, ME::Decline, M::Declined},
    {M::Applied, ME::Undo, M::Running},
    {M::Running, ME::Undo, M::Running},
    {M::Failed, ME::Undo, M::Running},
    {M::Running, ME::Undone, M::Undone},
    {M::Applied, ME::Undone, M::Undone},  // nothing left to revert (e.g. nothing was touched)
    {M::Failed, ME::Undone, M::Undone},
    {M::Failed, ME::Reset, M::Pending},
    {M::Declined, ME::Reset, M::Pending},
    {M::Undone, ME::Reset, M::Pending},
    {M::Pending, ME::Reset, M::Pending},
}};

using A = AttemptState;
using AE = AttemptEvent;
constexpr std::array<Row<A, AE>, 6> kAttemptTable{{
    {A::InProgress, AE::Complete, A::Complete},
    {A::InProgress, AE::Fail, A::Failed},
    {A::InProgress, AE::Abandon, A::Abandoned},
    {A::Complete, AE::Reopen, A::InProgress},
    {A::Failed, AE::Reopen, A::InProgress},
    {A::InProgress, AE::Reopen, A::InProgress},
}};

template <typename State, typename Event, std::size_t N>
Expected<State> lookup(const std::array<Row<State, Event>, N>& table, std::string_view what,
                       State state, Event event) {
  for (const auto& row : table) {
    if (row.from == state && row.event == event) return row.to;
  }
  return make_error(ErrorCode::Failed, "bug: {} cannot go from {} on {}", what, to_string(state),
                    to_string(event));
}

}  // namespace

std::string_view to_string(StepEvent event) {
  constexpr std::array<std::string_view, 7> names{
      "start", "succeed", "fail", "check-applied", "check-not-applied", "skip", "reset"};
  return names[static_cast<std::size_t>(event)];
}

std::string_view to_string(MigrationEvent event) {
  constexpr std::array<std::string_view, 7> names{"start", "complete", "fail", "decline",
                                                  "undo",  "undone",   "reset"};
  return names[static_cast<std::size_t>(event)];
}

std::string_view to_string(AttemptEvent event) {
  constexpr std::array<std::string_view, 4> names{"complete", "fail", "abandon", "reopen"};
  return names[static_cast<std::size_t>(event)];
}

Expected<StepState> next_state(StepState state, StepEvent event) {
  return lookup(kStepTable, "a step", state, event);
}

Expected<MigrationState> next_state(MigrationState state, MigrationEvent event) {
  return lookup(kMigrationTable, "a migration", state, event);
}

Expected<AttemptState> next_state(AttemptState state, AttemptEvent event) {
  return lookup(kAttemptTable, "an attempt", state, event);
}

std::span<const TransitionRow<StepState, StepEvent>> step_transitions() {
  return kStepTable;
}
std::span<const TransitionRow<MigrationState, MigrationEvent>> migration_transitions() {
  return kMigrationTable;
}
std::span<const TransitionRow<AttemptState, AttemptEvent>> attempt_transitions() {
  return kAttemptTable;
}

}  // namespace bootstate

// reconcile(): what this boot means for the attempt, before any work (semantics 1, 5, 6).
#include <algorithm>

#include "core/engine_internal.hpp"
#include "core/transitions.hpp"

namespace bootstate {

using namespace engine_detail;

namespace {

void archive(State& state) {
  if (!state.attempt) return;
  state.history.push_back(*state.attempt);
  if (state.history.size() > kHistoryLimit) {
    state.history.erase(state.history.begin(),
                        state.history.end() - static_cast<std::ptrdiff_t>(kHistoryLimit));
  }
  state.attempt.reset();
}

// A migration back in the plan after it was undone starts from scratch.
Expected<void> reset_record(MigrationRecord& record) {
  BOOTSTATE_TRY(advance(record.state, MigrationEvent::Reset));
  record.steps.clear();
  record.undo_steps.clear();
  record.backup_taken = false;
  record.message.clear();
  return {};
}

}  // namespace

Expected<Reconciled> reconcile(const State& original, const EngineInput& input) {
  Reconciled result{original, false, {}};
  State& state = result.state;
  // In a live switch the attempt is for the switched-to generation (docs/DESIGN.md "A live
  // switch"); at boot for the booted one.
  const bool live_switch = input.facts.switch_attempt();
  const std::string& target = input.facts.target_generation();
  auto note = [&](AttemptChange change, std::string event) {
    result.events.emplace_back(change, std::move(event));
    result.changed = true;
  };

  // The store was lost: from now on a step that can neither run twice nor be checked waits
  // for the operator (docs/DESIGN.md "Nothing lost"); the mark is committed with this run.
  if (input.store_lost && state.store_reset_usec == 0) {
    state.store_reset_usec = input.facts.now_usec == 0 ? 1 : input.facts.now_usec;
    note(AttemptChange::StoreLost,
         "the state store was lost: steps that are neither idempotent nor have a check wait "
         "for `bootstate accept ID`");
  }

  // A switch to a generation that has nothing to do (no migrations, or all already in effect,
  // nothing stale to undo) does nothing: no attempt opens, nothing is committed.
  if (switch_idle(state, input) && !work_remains(state, *input.plan, *input.recorded)) {
    return result;
  }

  // Semantics 5: another generation booted (or was switched to) while the attempt was
  // incomplete.
  if (state.attempt && state.attempt->state == AttemptState::InProgress &&
      state.attempt->generation != target) {
    BOOTSTATE_TRY(advance(state.attempt->state, AttemptEvent::Abandon));
    // An attempt with no boot is one a live switch opened (a boot's attempt counts its boot).
    const bool left_switch =
        state.attempt->boot_ids.empty() && !input.facts.current_generation.empty();
    state.attempt->reason = live_switch   ? fmt::format("switched to generation {}", target)
                            : left_switch ? fmt::format("switched back to generation {}", target)
                            : target == state.last_good_generation
                                ? fmt::format("fell back to the last good generation {}", target)
                                : fmt::format("generation {} was booted instead", target);
    state.attempt->finished_usec = input.facts.now_usec;
    note(AttemptChange::Abandoned,
         fmt::format("attempt {} abandoned: {}", state.attempt->number, state.attempt->reason));
  }

  // A new attempt per (generation, plan): the old one goes to history.
  if (!state.attempt || state.attempt->generation != target ||
      state.attempt->plan_digest != input.plan->digest) {
    archive(state);
    Attempt attempt;
    attempt.number = state.next_attempt_number++;
    attempt.generation = target;
    attempt.plan_digest = input.plan->digest;
    // The booted entry boots another generation in a live switch: not this attempt's.
    if (!live_switch) attempt.entry = input.entry.id;
    attempt.started_usec = input.facts.now_usec;
    state.attempt = attempt;
    note(AttemptChange::Started, fmt::format("attempt {} started for {}{}", attempt.number, target,
                                             live_switch ? " (live switch)" : ""));
  } else if (!live_switch && state.attempt->entry.empty() && !input.entry.id.empty()) {
    // First boot of a generation whose attempt began in a live switch.
    state.attempt->entry = input.entry.id;
    result.changed = true;
  }

  // Undone migrations that this plan has again start over; stale records that never touched
  // the machine are forgotten. Not while this plan's attempt is failed: a failed live switch
  // undid its migration, which stays undone (and failed) until the plan changes.
  const bool attempt_failed =
      state.attempt->state == AttemptState::Failed || attempt_cancelled(state);
  for (MigrationRecord& record : state.migrations) {
    if (!attempt_failed && record.state == MigrationState::Undone &&
        input.plan->find(record.id) != nullptr) {
      BOOTSTATE_TRY(reset_record(record));
      note(AttemptChange::Reintroduced,
           fmt::format("migration \"{}\" is in the plan again", record.id));
    }
  }
  auto forgettable = [&](const MigrationRecord& record) {
    return input.plan->find(record.id) == nullptr && !record.touched();
  };
  if (std::any_of(state.migrations.begin(), state.migrations.end(), forgettable)) {
    std::erase_if(state.migrations, forgettable);
    result.changed = true;
  }

  Attempt& attempt = *state.attempt;
  // Work appeared for a finished attempt of this plan (accept, retry): it goes on.
  if (attempt.state == AttemptState::Complete &&
      work_remains(state, *input.plan, *input.recorded)) {
    BOOTSTATE_TRY(advance(attempt.state, AttemptEvent::Reopen));
    attempt.reason.clear();
    note(AttemptChange::Reopened,
         fmt::format("attempt {} reopened: the plan has work again", attempt.number));
  }

  // Semantics 6: count this boot once; the loop breaker ends an attempt that does not progress.
  // A live switch is no boot of its generation: nothing to count.
  if (!live_switch && attempt.state == AttemptState::InProgress &&
      std::find(attempt.boot_ids.begin(), attempt.boot_ids.end(), input.facts.boot_id) ==
          attempt.boot_ids.end()) {
    attempt.boot_ids.push_back(input.facts.boot_id);
    attempt.boots_without_progress += 1;
    result.changed = true;
    if (attempt.boots_without_progress > kMaxBootsWithoutProgress ||
        attempt.boot_ids.size() > kMaxBootsPerAttempt) {
      BOOTSTATE_TRY(advance(attempt.state, AttemptEvent::Fail));
      attempt.reason =
          fmt::format("loop breaker: {} boots without progress ({} boots in this attempt)",
                      attempt.boots_without_progress, attempt.boot_ids.size());
      attempt.finished_usec = input.facts.now_usec;
      note(AttemptChange::Failed,
           fmt::format("attempt {} failed: {}", attempt.number, attempt.reason));
    }
  }
  return result;
}

}  // namespace bootstate

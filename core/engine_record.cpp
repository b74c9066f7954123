// The state to commit around each effect: `running` before a step (semantics 3), its outcome
// after, and the consequences of a failure for the migration and the attempt (semantics 4).
// Every state change goes through the transition tables.
#include <algorithm>

#include "core/choices.hpp"
#include "core/engine_internal.hpp"
#include "core/step_items.hpp"
#include "core/transitions.hpp"

namespace bootstate {

using namespace engine_detail;

namespace {

// next() saw no record of the decision's migration in exactly these records.
bool known_to_have_none(const State& state, const Decision& decision) {
  return decision.no_record && decision.no_record->records == state.migrations.data() &&
         decision.no_record->count == state.migrations.size();
}

// The record of the decision's migration, created (with its definition) on first touch.
MigrationRecord& record_for(State& state, const Decision& decision) {
  const Migration& migration = *decision.migration;
  MigrationRecord* record =
      known_to_have_none(state, decision) ? nullptr : state.find(migration.id);
  if (record == nullptr) {
    state.migrations.push_back(MigrationRecord{});
    record = &state.migrations.back();
    record->id = migration.id;
    record->policy = migration.policy;
  }
  if (!decision.undo && !record->touched()) {
    // What is recorded is what runs: undo later uses exactly this definition.
    record->digest = migration.digest;
    record->definition_json = migration.definition_json;
    record->policy = migration.policy;
    if (state.attempt) record->generation = state.attempt->generation;
  }
  if (state.attempt) record->attempt = state.attempt->number;
  return *record;
}

StepRecord& step_record_for(MigrationRecord& record, const Decision& decision) {
  std::vector<StepRecord>& records = decision.undo ? record.undo_steps : record.steps;
  if (StepRecord* found = find_step(records, decision.step->id)) return *found;
  records.push_back(StepRecord{});
  records.back().id = decision.step->id;
  return records.back();
}

bool all_forward_steps_done(const Migration& migration, const MigrationRecord& record) {
  return std::all_of(migration.steps.begin(), migration.steps.end(), [&](const Step& step) {
    const StepRecord* found = find_step(record.steps, step.id);
    return found != nullptr &&
           (found->state == StepState::Done || found->state == StepState::Skipped);
  });
}

bool all_undo_done(const Migration& migration, const MigrationRecord& record) {
  std::string blocker;
  std::vector<UndoItem> items = undo_items(migration, record, blocker);
  return blocker.empty() &&
         std::none_of(items.begin(), items.end(), [](const UndoItem& item) { return !item.done; });
}

}  // namespace

namespace engine_detail {

Decision::NoRecordIn no_record_in(const State& state) {
  return {state.migrations.data(), state.migrations.size()};
}

Expected<void> fail_attempt(State& state, const std::string& reason, std::int64_t now_usec) {
  if (!state.attempt || state.attempt->state != AttemptState::InProgress) return {};
  BOOTSTATE_TRY(advance(state.attempt->state, AttemptEvent::Fail));
  state.attempt->reason = reason;
  state.attempt->finished_usec = now_usec;
  return {};
}

}  // namespace engine_detail

namespace {
// The pseudo-step a failed backup restore is recorded under (it has no step of its own). Made
// on first use: a namespace-scope Step would be built and registered for destruction by every
// process, an idle boot's too.
const Step& restore_step() {
  static const Step step = [] {
    Step made;
    made.id = "restore-backup";
    return made;
  }();
  return step;
}
}  // namespace

Expected<State> step_started(State state, const Decision& decision, const BootFacts& facts) {
  // The migration whose step starts is now the newest: stale migrations are undone newest
  // first (semantics 1), and its effect sits on top of what ran before. A migration retried
  // after the resolution its step chose (issue #15, "MIGRATION.RESOLUTION") was recorded
  // before that resolution; left there, it would be undone after it. Usually the record is
  // already the last one (a new record is appended), and nothing moves. The record is looked
  // up once, through record_for: a second scan for a migration without a record made a
  // preview of thousands of pending migrations quadratic again.
  MigrationRecord* found = &record_for(state, decision);
  if (!decision.undo && found != &state.migrations.back()) {
    const auto at = state.migrations.begin() + (found - state.migrations.data());
    std::rotate(at, at + 1, state.migrations.end());
    found = &state.migrations.back();
  }
  MigrationRecord& record = *found;
  BOOTSTATE_TRY(
      advance(record.state, decision.undo ? MigrationEvent::Undo : MigrationEvent::Start));
  StepRecord& step = step_record_for(record, decision);
  BOOTSTATE_TRY(advance(step.state, StepEvent::Start));
  step.attempts += 1;
  step.boot_id = facts.boot_id;
  step.started_usec = facts.now_usec;
  step.finished_usec = 0;
  step.exit_status = -1;
  step.message = step.awaiting_reboot ? "verifying after reboot" : "running";
  return state;
}

Expected<State> step_finished(State state, const Decision& decision, const StepOutcome& reported,
                              const BootFacts& facts) {
  // The items the step reported join the attempt's, whatever its exit; an error item (or a
  // garbled report) fails a step that otherwise succeeded.
  const std::uint64_t attempt = state.attempt ? state.attempt->number : 0;
  StepItems items = step_items(*decision.migration, decision.step->id, decision.undo, reported,
                               state, facts.target_generation(), attempt, facts.now_usec);
  record_items(state, {items.source}, items.records, facts.target_generation());
  StepOutcome outcome = reported;
  if (outcome.ok && !items.failure.empty()) {
    outcome.ok = false;
    outcome.awaiting_reboot = false;
    outcome.message = std::move(items.failure);
  }

  MigrationRecord& record = record_for(state, decision);
  StepRecord& step = step_record_for(record, decision);
  step.exit_status = outcome.exit_status;
  step.message = outcome.message;
  step.finished_usec = facts.now_usec;
  if (!outcome.undo_record.empty()) step.undo_record = outcome.undo_record;

  if (outcome.ok && outcome.awaiting_reboot) {
    step.awaiting_reboot = true;  // stays running: the next boot verifies (firmware)
    return state;
  }
  step.awaiting_reboot = false;
  if (!outcome.ok) {
    if (step.state == StepState::Pending) BOOTSTATE_TRY(advance(step.state, StepEvent::Start));
    BOOTSTATE_TRY(advance(step.state, StepEvent::Fail));
    if (record.state == MigrationState::Pending) {
      BOOTSTATE_TRY(advance(record.state, MigrationEvent::Start));
    }
    if (record.state == MigrationState::Applied) {
      BOOTSTATE_TRY(advance(record.state, MigrationEvent::Undo));
    }
    BOOTSTATE_TRY(advance(record.state, MigrationEvent::Fail));
    record.message = fmt::format("{}step \"{}\" failed: {}", decision.undo ? "undo " : "", step.id,
                                 outcome.message);
    if (decision.undo) {
      BOOTSTATE_TRY(fail_attempt(
          state,
          fmt::format("undo of stale migration \"{}\" failed: {}", record.id, record.message),
          facts.now_usec));
    } else if (decision.migration->policy == Policy::Required) {
      BOOTSTATE_TRY(fail_attempt(
          state, fmt::format("required migration \"{}\": {}", record.id, record.message),
          facts.now_usec));
    }
    return state;
  }

  BOOTSTATE_TRY(advance(step.state, StepEvent::Succeed));
  if (state.attempt) state.attempt->boots_without_progress = 0;
  if (decision.undo) {
    if (all_undo_done(*decision.migration, record)) {
      BOOTSTATE_TRY(advance(record.state, MigrationEvent::Undone));
    }
  } else if (all_forward_steps_done(*decision.migration, record)) {
    BOOTSTATE_TRY(advance(record.state, MigrationEvent::Complete));
    record.message.clear();
  }
  return state;
}

Expected<State> check_finished(State state, const Decision& decision, CheckResult result,
                               const BootFacts& facts, const StepOutcome& interrupted) {
  if (result == CheckResult::Applied &&
      (!interrupted.reported_items.empty() || !interrupted.reported_items_error.empty())) {
    // The run got as far as its report before the cut: it ended as that report says, as if
    // its end had been committed (an error item fails it; its items join the attempt's).
    StepOutcome outcome = interrupted;
    outcome.ok = true;
    outcome.message = "interrupted; its check says it is applied";
    return step_finished(std::move(state), decision, outcome, facts);
  }
  MigrationRecord& record = record_for(state, decision);
  StepRecord& step = step_record_for(record, decision);
  if (result != CheckResult::Applied) {
    // The effect is not in place (or the check cannot tell): the step is pending again, and
    // the next decision runs it.
    BOOTSTATE_TRY(advance(step.state, StepEvent::CheckNotApplied));
    step.message = result == CheckResult::NotApplied
                       ? "interrupted; its check says it is not applied: running it again"
                       : "interrupted; its check cannot tell: running it again";
    return state;
  }
  BOOTSTATE_TRY(advance(step.state, StepEvent::CheckApplied));
  step.message = "interrupted; its check says it is applied";
  step.finished_usec = facts.now_usec;
  if (state.attempt) state.attempt->boots_without_progress = 0;
  if (!decision.undo && all_forward_steps_done(*decision.migration, record)) {
    BOOTSTATE_TRY(advance(record.state, MigrationEvent::Complete));
  } else if (decision.undo && all_undo_done(*decision.migration, record)) {
    BOOTSTATE_TRY(advance(record.state, MigrationEvent::Undone));
  }
  return state;
}

Expected<State> backup_taken(State state, const Decision& decision, const BootFacts&) {
  MigrationRecord& record = record_for(state, decision);
  BOOTSTATE_TRY(advance(record.state, MigrationEvent::Start));
  record.backup_taken = true;
  return state;
}

Expected<State> backup_failed(State state, const Decision& decision, std::string_view why,
                              const BootFacts& facts) {
  Decision failed = decision;
  failed.kind = ActionKind::RunStep;
  failed.step = &decision.migration->steps.front();
  StepOutcome outcome;
  outcome.message = fmt::format("backup failed: {}", why);
  return step_finished(std::move(state), failed, outcome, facts);
}

Expected<State> restore_failed(State state, const Decision& decision, std::string_view why,
                               const BootFacts& facts) {
  Decision failed = decision;
  failed.undo = true;
  failed.step = &restore_step();
  StepOutcome outcome;
  outcome.message = fmt::format("restoring the backup failed: {}", why);
  return step_finished(std::move(state), failed, outcome, facts);
}

Expected<State> backup_restored(State state, const Decision& decision, const BootFacts&) {
  MigrationRecord& record = record_for(state, decision);
  if (record.state != MigrationState::Running) {
    BOOTSTATE_TRY(advance(record.state, MigrationEvent::Undo));
  }
  BOOTSTATE_TRY(advance(record.state, MigrationEvent::Undone));
  record.backup_taken = false;
  record.message = "undone";
  return state;
}

}  // namespace bootstate

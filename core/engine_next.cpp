// next(): the one thing to do now in this phase. Stale migrations are undone first, newest
// first and one at a time (semantics 1); then the plan's runnable migrations advance, each step
// only in its own phase (semantics 2); an interrupted step resumes by the table of semantics 3.
#include <algorithm>

#include "core/decision_cache.hpp"
#include "core/engine_internal.hpp"

namespace bootstate {
namespace engine_detail {

bool asks_reboot(const MigrationRecord& record, const EngineInput& input) {
  auto pending_in = [&](const std::vector<StepRecord>& records, const std::vector<Step>& steps) {
    for (const StepRecord& step_record : records) {
      if (step_record.boot_id != input.facts.boot_id) continue;
      if (step_record.state == StepState::Running && step_record.awaiting_reboot) return true;
      if (step_record.state != StepState::Done) continue;
      for (const Step& step : steps) {
        if (step.id == step_record.id && step.reboot) return true;
      }
    }
    return false;
  };
  // Only a record with a step of this boot can ask for a reboot: the definition is looked up
  // for those alone (at every decision, a lookup per record was a quadratic term, issue #17).
  auto this_boot = [&](const std::vector<StepRecord>& records) {
    return std::any_of(records.begin(), records.end(),
                       [&](const StepRecord& step) { return step.boot_id == input.facts.boot_id; });
  };
  if (!this_boot(record.steps) && !this_boot(record.undo_steps)) return false;
  const Migration* definition = definition_of(input, record.id);
  if (definition == nullptr) return false;
  return pending_in(record.steps, definition->steps) ||
         pending_in(record.undo_steps, definition->undo);
}

bool reboot_pending(const State& state, const EngineInput& input) {
  return std::any_of(state.migrations.begin(), state.migrations.end(),
                     [&](const MigrationRecord& record) { return asks_reboot(record, input); });
}

const Step* open_step(const Migration& migration, const MigrationRecord* record) {
  for (const Step& step : migration.steps) {
    const StepRecord* step_record = record ? find_step(record->steps, step.id) : nullptr;
    if (step_record != nullptr &&
        (step_record->state == StepState::Done || step_record->state == StepState::Skipped)) {
      continue;
    }
    return &step;
  }
  return nullptr;
}

bool progress_this_boot(const State& state, const BootFacts& facts) {
  for (const MigrationRecord& record : state.migrations) {
    for (const auto* records : {&record.steps, &record.undo_steps}) {
      for (const StepRecord& step : *records) {
        if (step.state == StepState::Done && step.boot_id == facts.boot_id) return true;
      }
    }
  }
  return false;
}

bool switch_idle(const State& state, const EngineInput& input) {
  return input.facts.switch_attempt() &&
         (!state.attempt || state.attempt->generation != input.facts.current_generation ||
          state.attempt->plan_digest != input.plan->digest);
}

}  // namespace engine_detail

using namespace engine_detail;

namespace {

Decision make(ActionKind kind, const Migration* migration, const Step* step, bool undo,
              std::string reason) {
  Decision decision;
  decision.kind = kind;
  decision.migration = migration;
  decision.step = step;
  decision.undo = undo;
  decision.reason = std::move(reason);
  return decision;
}

// Semantics 3: a step found `running` was interrupted (bootstate runs one phase at a time).
Expected<Decision> resume(const State& state, const EngineInput& input, const Migration* migration,
                          const Step* step, const StepRecord& record, bool undo) {
  if (record.awaiting_reboot) {
    return make(ActionKind::RunStep, migration, step, undo,
                "verify after the reboot it was waiting for");
  }
  if (step->idempotent) {
    return make(ActionKind::RunStep, migration, step, undo, "re-run after an interruption");
  }
  if (has_check(*step)) {
    return make(ActionKind::CheckStep, migration, step, undo,
                "interrupted: its check decides whether it is applied");
  }
  Decision decision =
      make(ActionKind::Bookkeeping, migration, step, undo, "interrupted, not idempotent");
  StepOutcome outcome;
  outcome.message = fmt::format("interrupted in boot {} and not idempotent (no check)",
                                record.boot_id.empty() ? "?" : record.boot_id);
  auto failed = step_finished(state, decision, outcome, input.facts);
  if (!failed) return failed.error();
  decision.commit = std::move(*failed);
  return decision;
}

// The next piece of undo of the newest of `views` (stale migrations, or those of a failed live
// switch) that still has some, or nullopt when none has. One whose next piece belongs to
// another phase holds everything (strict reverse order): the returned decision is then None.
std::optional<Expected<Decision>> next_undo(const State& state, const EngineInput& input,
                                            const std::vector<StaleView>& views) {
  for (const StaleView& view : views) {
    if (view.kept || !view.pending) continue;
    if (!view.blocker.empty()) return Expected<Decision>(Decision{});  // finish() reports it
    const MigrationRecord& record = *view.record;
    std::string blocker;
    for (const UndoItem& item : undo_items(*view.definition, record, blocker)) {
      if (item.done) continue;
      if (item.kind == ActionKind::RestoreBackup) {
        if (!root_mounted(input.phase)) return Expected<Decision>(Decision{});
        return Expected<Decision>(make(ActionKind::RestoreBackup, view.definition, nullptr, true,
                                       "restore the backup of a stale migration"));
      }
      if (item.step->phase != input.phase) return Expected<Decision>(Decision{});
      const StepRecord* step_record = find_step(record.undo_steps, item.step->id);
      if (step_record != nullptr && step_record->state == StepState::Running) {
        if (item.kind == ActionKind::RunStep) {
          return resume(state, input, view.definition, item.step, *step_record, true);
        }
      }
      return Expected<Decision>(
          make(item.kind, view.definition, item.step, true, "undo a stale migration"));
    }
    // Nothing left to revert: it is undone.
    Decision decision =
        make(ActionKind::Bookkeeping, view.definition, nullptr, true, "nothing left to undo");
    auto undone = backup_restored(state, decision, input.facts);
    if (!undone) return Expected<Decision>(undone.error());
    decision.commit = std::move(*undone);
    return Expected<Decision>(std::move(decision));
  }
  return std::nullopt;
}

// The forward decision for `view`, or nullopt when it has none in this phase.
std::optional<Expected<Decision>> forward_of(const State& state, const EngineInput& input,
                                             const MigrationView& view) {
  if (view.readiness != Readiness::Runnable) return std::nullopt;
  const Migration* migration = view.migration;
  const MigrationRecord* record = view.record;
  const Step* step = open_step(*migration, record);
  if (step == nullptr || step->phase != input.phase) return std::nullopt;  // later, or next boot
  const StepRecord* step_record = record ? find_step(record->steps, step->id) : nullptr;
  if (step_record != nullptr && step_record->state == StepState::Running) {
    return resume(state, input, migration, step, *step_record, false);
  }
  const bool backup_first = step == &migration->steps.front() && !migration->backup.empty() &&
                            (record == nullptr || !record->backup_taken);
  Decision decision = backup_first ? make(ActionKind::TakeBackup, migration, nullptr, false,
                                          "snapshot the backup paths before the first step")
                                   : make(ActionKind::RunStep, migration, step, false, "next step");
  if (record == nullptr) decision.no_record = no_record_in(state);
  return Expected<Decision>(std::move(decision));
}

std::optional<Expected<Decision>> next_forward(const State& state, const EngineInput& input,
                                               const std::vector<MigrationView>& views) {
  for (const MigrationView& view : views) {
    if (auto decision = forward_of(state, input, view)) return decision;
  }
  return std::nullopt;
}

// Required work of the plan that cannot run in this attempt fails it, as a failed required step
// does (semantics 4): a generation whose required work did not run is never blessed.
std::optional<Expected<Decision>> fail_unrunnable(const State& state, const EngineInput& input,
                                                  const std::optional<Unrunnable>& blocked) {
  if (!blocked) return std::nullopt;
  Decision decision =
      make(ActionKind::Bookkeeping, blocked->migration, nullptr, false, blocked->reason);
  State failed = state;
  if (auto done = fail_attempt(failed, blocked->reason, input.facts.now_usec); !done) {
    return Expected<Decision>(done.error());
  }
  decision.commit = std::move(failed);
  return Expected<Decision>(std::move(decision));
}

bool attempt_in_progress(const State& state) {
  return state.attempt && state.attempt->state == AttemptState::InProgress;
}

// What the views of the plan and of the stale migrations say to do, all of them computed.
Expected<Decision> decide_from_views(const State& state, const EngineInput& input) {
  const std::vector<MigrationView> views = plan_view(*input.plan, state, input.index);
  if (attempt_in_progress(state)) {
    if (auto failed = fail_unrunnable(state, input, required_work_blocked(views))) return *failed;
  }
  if (reboot_pending(state, input)) return Decision{};
  if (auto undo =
          next_undo(state, input, stale_view(state, *input.plan, *input.recorded, input.index))) {
    return *undo;
  }
  if (auto forward = next_forward(state, input, views)) return *forward;
  return Decision{};
}

// The same decision from the views the cache carries: each of the scans above stops at the
// first view that decides, so the first of each kind is all it needs.
Expected<Decision> decide_from_cache(const State& state, const EngineInput& input,
                                     const DecisionCache& cache) {
  if (attempt_in_progress(state) && !cache.blocked.empty()) {
    return *fail_unrunnable(state, input, unrunnable(cache.views[*cache.blocked.begin()]));
  }
  if (cache.reboot_count > 0) return Decision{};
  if (!cache.undo.empty()) {  // stale_view is newest record first
    return *next_undo(state, input, {*cache.stale[*cache.undo.rbegin()]});
  }
  if (!cache.forward.empty()) return *forward_of(state, input, cache.views[*cache.forward.begin()]);
  return Decision{};
}

Expected<Decision> decide(const State& state, const EngineInput& input) {
  if (state.attempt && (state.attempt->state == AttemptState::Failed || attempt_cancelled(state))) {
    // A failed live switch takes back what it did, as if its migration were stale; a failed
    // boot leaves that to the fallback generation. A cancelled attempt likewise: in a live
    // switch at once, after a boot at the next boot of the last good generation.
    auto undo = next_undo(state, input, failed_switch_view(state, *input.plan, input.facts));
    return undo ? *undo : Decision{};
  }
  if (switch_idle(state, input)) return Decision{};
  if (input.cache != nullptr && refresh_cache(*input.cache, state, input)) {
    return decide_from_cache(state, input, *input.cache);
  }
  return decide_from_views(state, input);
}

}  // namespace

Expected<Decision> next(const State& state, const EngineInput& input) {
  auto decision = decide(state, input);
  // The runner carries out what it is told: the record of this decision's migration is the one
  // that changes before the next decision (docs/PERFORMANCE.md "Session 8").
  if (input.cache != nullptr && decision && decision->migration != nullptr) {
    input.cache->dirty.push_back(decision->migration->id);
  }
  return decision;
}

}  // namespace bootstate

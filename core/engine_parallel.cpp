// startable_steps(): which forward command steps of independent migrations may run at once
// (issue #15 item 4). next() stays the one authority on everything else: this function only
// widens a plain "run the next step" into several, and returns nothing whenever next() could
// decide something other than a forward step (undo, a restore, a resume, a commit), so that
// every such decision is still taken alone, in the order it is taken with --jobs 1. The one
// place it goes further than next(): once a migration asked for a reboot, next() stops
// everything, while the steps running beside it may still be followed by the other independent
// migrations' steps of the phase; when none is left, next() ends the phase for the reboot.
#include <algorithm>

#include "core/engine_internal.hpp"

namespace bootstate {

using namespace engine_detail;

namespace {

bool finished(const StepRecord* record) {
  return record != nullptr &&
         (record->state == StepState::Done || record->state == StepState::Skipped);
}

// Undo of a stale migration is pending (or blocks): next() does it first, one piece at a time.
bool undo_pending(const State& state, const EngineInput& input) {
  if (input.recorded == nullptr) return false;
  for (const StaleView& view : stale_view(state, *input.plan, *input.recorded, input.index)) {
    if (view.kept) continue;
    if (view.pending || !view.blocker.empty()) return true;
  }
  return false;
}

// A step of `steps` asked for a reboot in this boot: it is done and has `reboot`, or it awaits
// the reboot (the same test as reboot_pending(), for one migration's records).
bool asked_reboot(const std::vector<StepRecord>& records, const std::vector<Step>& steps,
                  const std::string& boot_id) {
  for (const StepRecord& record : records) {
    if (record.boot_id != boot_id) continue;
    if (record.state == StepState::Running && record.awaiting_reboot) return true;
    if (record.state != StepState::Done) continue;
    for (const Step& step : steps) {
      if (step.id == record.id && step.reboot) return true;
    }
  }
  return false;
}

}  // namespace

std::vector<Decision> startable_steps(const State& state, const EngineInput& input,
                                      const std::vector<std::string_view>& in_flight,
                                      std::size_t room) {
  std::vector<Decision> startable;
  if (room == 0 || !state.attempt || state.attempt->state != AttemptState::InProgress) {
    return startable;
  }
  if (switch_idle(state, input) || undo_pending(state, input)) return startable;
  // A migration that asked for a reboot lets the independent ones of the phase finish first
  // (docs/DESIGN.md): it and those `after` it wait for the reboot, the others go on. An undo
  // step's reboot holds everything, as next() does.
  std::vector<std::string_view> rebooting;
  for (const MigrationRecord& record : state.migrations) {
    const Migration* definition = definition_of(input, record.id);
    if (definition == nullptr) continue;
    if (asked_reboot(record.undo_steps, definition->undo, input.facts.boot_id)) return startable;
    if (asked_reboot(record.steps, definition->steps, input.facts.boot_id)) {
      rebooting.push_back(record.id);
    }
  }
  const std::vector<MigrationView> views = plan_view(*input.plan, state, input.index);
  if (required_work_blocked(views)) return startable;  // next() fails the attempt
  auto flying = [&](std::string_view id) {
    return std::find(in_flight.begin(), in_flight.end(), id) != in_flight.end();
  };
  // Held for the reboot: a migration that asked for one, and every one `after` it, directly or
  // through others (its last step may have asked: those after it are runnable, and wait).
  std::vector<bool> held;
  if (!rebooting.empty()) {
    PlanIndex built;
    const PlanIndex* index = input.index;
    if (index == nullptr) index = &(built = index_plan(*input.plan));
    held.assign(input.plan->migrations.size(), false);
    for (std::size_t position : index->order) {  // `after` first
      bool hold = std::find(rebooting.begin(), rebooting.end(),
                            input.plan->migrations[position].id) != rebooting.end();
      for (std::size_t before : index->after[position]) hold = hold || held[before];
      held[position] = hold;
    }
  }
  auto waits_for_reboot = [&](const Migration* migration) {
    return !held.empty() &&
           held[static_cast<std::size_t>(migration - input.plan->migrations.data())];
  };
  for (const MigrationView& view : views) {
    if (view.readiness != Readiness::Runnable || flying(view.migration->id) ||
        waits_for_reboot(view.migration)) {
      continue;
    }
    const Migration& migration = *view.migration;
    const MigrationRecord* record = view.record;
    for (const Step& step : migration.steps) {
      const StepRecord* step_record = record ? find_step(record->steps, step.id) : nullptr;
      if (finished(step_record)) continue;
      if (step.phase != input.phase) break;  // later this boot, or the next boot
      // Interrupted before this run: the resume table decides it, alone (semantics 3).
      if (step_record != nullptr && step_record->state == StepState::Running) return {};
      const bool needs_backup = &step == &migration.steps.front() && !migration.backup.empty() &&
                                (record == nullptr || !record->backup_taken);
      // The backup is taken alone (it copies what the other steps may be changing); storage
      // and firmware steps act on one disk or device and stay serial.
      if (needs_backup || step.kind != StepKind::Command) break;
      Decision decision;
      decision.kind = ActionKind::RunStep;
      decision.migration = &migration;
      decision.step = &step;
      decision.reason = "next step";
      if (record == nullptr) decision.no_record = no_record_in(state);
      startable.push_back(std::move(decision));
      break;
    }
    if (startable.size() == room) break;
  }
  return startable;
}

}  // namespace bootstate

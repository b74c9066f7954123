// startable_steps(): which forward command steps of independent migrations may run at once
// (issue #15 item 4). next() stays the one authority on everything else: this function only
// widens a plain "run the next step" into several, and returns nothing whenever next() could
// decide something other than a forward step (undo, a restore, a resume, a commit), so that
// every such decision is still taken alone, in the order it is taken with --jobs 1.
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

}  // namespace

std::vector<Decision> startable_steps(const State& state, const EngineInput& input,
                                      const std::vector<std::string_view>& in_flight,
                                      std::size_t room) {
  std::vector<Decision> startable;
  if (room == 0 || !state.attempt || state.attempt->state != AttemptState::InProgress) {
    return startable;
  }
  if (switch_idle(state, input) || reboot_pending(state, input) || undo_pending(state, input)) {
    return startable;
  }
  const std::vector<MigrationView> views = plan_view(*input.plan, state, input.index);
  if (required_work_blocked(views)) return startable;  // next() fails the attempt
  auto flying = [&](std::string_view id) {
    return std::find(in_flight.begin(), in_flight.end(), id) != in_flight.end();
  };
  for (const MigrationView& view : views) {
    if (view.readiness != Readiness::Runnable || flying(view.migration->id)) continue;
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
      startable.push_back(std::move(decision));
      break;
    }
    if (startable.size() == room) break;
  }
  return startable;
}

}  // namespace bootstate

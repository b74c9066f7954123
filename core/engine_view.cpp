// Views of the plan and of stale migrations: which migration may run, which waits and why,
// and what undoing a stale one takes. Shared by the engine, `status` and `preview`.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/engine_internal.hpp"

namespace bootstate {
namespace engine_detail {

const StepRecord* find_step(const std::vector<StepRecord>& records, std::string_view id) {
  for (const StepRecord& record : records) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

StepRecord* find_step(std::vector<StepRecord>& records, std::string_view id) {
  for (StepRecord& record : records) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

bool started(const StepRecord& record) {
  return record.state != StepState::Pending && record.state != StepState::Skipped;
}

const Migration* definition_of(const EngineInput& input, std::string_view id) {
  if (input.index != nullptr) {
    auto found = input.index->position.find(id);
    if (found != input.index->position.end()) return &input.plan->migrations[found->second];
  } else if (const Migration* migration = input.plan->find(id)) {
    return migration;
  }
  if (input.recorded == nullptr) return nullptr;
  auto found = input.recorded->find(std::string(id));
  return found == input.recorded->end() ? nullptr : &found->second;
}

std::vector<UndoItem> undo_items(const Migration& definition, const MigrationRecord& record,
                                 std::string& blocker) {
  std::vector<UndoItem> items;
  auto undo_done = [&](std::string_view id) {
    const StepRecord* step = find_step(record.undo_steps, id);
    return step != nullptr && step->state == StepState::Done;
  };
  if (!definition.undo.empty()) {
    for (const Step& step : definition.undo) {
      items.push_back({ActionKind::RunStep, &step, undo_done(step.id)});
    }
    return items;
  }
  // No explicit undo: storage steps revert themselves (newest first), then the backup.
  for (auto step = definition.steps.rbegin(); step != definition.steps.rend(); ++step) {
    const StepRecord* forward = find_step(record.steps, step->id);
    if (forward == nullptr || !started(*forward)) continue;
    if (step->kind == StepKind::Storage) {
      bool grows = std::any_of(step->storage.begin(), step->storage.end(), [](const auto& op) {
        return op.op == StorageOpKind::GrowPartition;
      });
      if (grows) {
        blocker = fmt::format(
            "step \"{}\" grew a partition, which cannot be undone (mark the "
            "migration keep, or decline its undo)",
            step->id);
        return {};
      }
      items.push_back({ActionKind::RevertStep, &*step, undo_done(step->id)});
    } else if (step->kind == StepKind::Command && !record.backup_taken) {
      blocker = fmt::format(
          "step \"{}\" ran, and the migration has neither undo steps nor a "
          "backup to restore",
          step->id);
      return {};
    }
  }
  if (record.backup_taken) items.push_back({ActionKind::RestoreBackup, nullptr, false});
  return items;
}

}  // namespace engine_detail

using namespace engine_detail;

bool has_check(const Step& step) {
  // Storage and firmware steps can always look at the machine; commands only with `check`.
  return step.kind != StepKind::Command || !step.command.check.empty();
}

bool needs_operator_after_loss(const Step& step) {
  return !step.idempotent && !has_check(step);
}

PlanIndex index_plan(const Plan& plan) {
  PlanIndex index;
  const std::size_t count = plan.migrations.size();
  index.position.reserve(count);
  for (std::size_t i = 0; i < count; ++i) index.position.emplace(plan.migrations[i].id, i);
  index.after.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    for (const std::string& before : plan.migrations[i].after) {
      index.after[i].push_back(index.position.at(before));  // the plan was validated
    }
  }
  // `after` first, otherwise plan order (Kahn's algorithm, O((n + e) log n)).
  index.order = migration_order(plan);
  return index;
}

namespace {

// The plan's migration with `id`, through the index when there is one.
const Migration* in_plan(const Plan& plan, const PlanIndex* index, std::string_view id) {
  if (index == nullptr) return plan.find(id);
  auto found = index->position.find(id);
  return found == index->position.end() ? nullptr : &plan.migrations[found->second];
}

// Why a migration waits for the operator after the store was lost (docs/DESIGN.md "Nothing
// lost"), or "" when it does not: a step that may neither run twice nor be checked and has no
// record since the loss, in a migration the operator has not accepted.
std::string held_because(const Migration& migration, const MigrationRecord* record,
                         const State& state) {
  if (state.store_reset_usec == 0) return {};
  if (record != nullptr && record->decision == OperatorDecision::Accepted) return {};
  for (const Step& step : migration.steps) {
    if (!needs_operator_after_loss(step)) continue;
    const StepRecord* step_record = record ? find_step(record->steps, step.id) : nullptr;
    if (step_record != nullptr && step_record->state != StepState::Pending) continue;
    return fmt::format(
        "the state store was lost, and step \"{}\" is neither idempotent nor has a check, so "
        "bootstate cannot tell whether it ran before: `bootstate accept {}` runs it",
        step.id, migration.id);
  }
  return {};
}

std::string failed_detail(const MigrationRecord& record) {
  for (const StepRecord& step : record.steps) {
    if (step.state == StepState::Failed) {
      return fmt::format("step \"{}\" failed: {}", step.id, step.message);
    }
  }
  return record.message;
}

}  // namespace

namespace engine_detail {

MigrationView view_of(const Plan& plan, const State& state, const PlanIndex& index,
                      std::size_t position, const MigrationRecord* record,
                      const std::vector<Readiness>& readiness_of,
                      const std::vector<std::size_t>& cause_of, std::size_t& cause_out) {
  const Migration* migration = &plan.migrations[position];
  MigrationView view;
  view.migration = migration;
  view.record = record;
  cause_out = kNoCause;
  bool decided = true;
  if (record != nullptr && record->touched() && record->digest != migration->digest) {
    // Before `applied`: a plan that reuses the id of work that ran for different work would
    // otherwise leave the difference pending forever behind an "applied" (issue #13 item 4).
    view.readiness = Readiness::Blocked;
    view.definition_changed = true;
    view.detail = fmt::format(
        "its definition changed after it {} (digest {} → {}): bootstate does not run a changed "
        "migration again; give the new definition a new id",
        record->state == MigrationState::Applied ? "was applied" : "started", record->digest,
        migration->digest);
  } else if (record != nullptr && record->state == MigrationState::Applied) {
    view.readiness = Readiness::Applied;
  } else if (record != nullptr && record->state == MigrationState::Failed) {
    view.readiness = Readiness::Failed;
    view.detail = failed_detail(*record);
  } else if (record != nullptr && (record->state == MigrationState::Declined ||
                                   record->decision == OperatorDecision::Declined)) {
    view.readiness = Readiness::Declined;
  } else if (migration->policy == Policy::Optional &&
             (record == nullptr || record->decision != OperatorDecision::Accepted)) {
    view.readiness = Readiness::NeedsAccept;
  } else if (std::string held = held_because(*migration, record, state); !held.empty()) {
    view.readiness = Readiness::Held;
    view.detail = std::move(held);
  } else {
    decided = false;
  }
  if (decided) {
    if (view.readiness != Readiness::Applied) cause_out = position;
    return view;
  }
  view.readiness = Readiness::Runnable;
  for (std::size_t nth = 0; nth < migration->after.size(); ++nth) {
    const std::string& before = migration->after[nth];
    const std::size_t dependency_index = index.after[position][nth];
    Readiness dependency = readiness_of[dependency_index];
    if (dependency == Readiness::Applied) continue;
    if (dependency == Readiness::Runnable || dependency == Readiness::Waiting) {
      view.readiness = Readiness::Waiting;
      view.detail = fmt::format("runs after \"{}\"", before);
      continue;
    }
    // Held follows held: it runs once the operator releases the one it follows.
    view.readiness = dependency == Readiness::Held ? Readiness::Held : Readiness::Blocked;
    const std::size_t cause = cause_of[dependency_index];
    cause_out = cause;
    if (cause == dependency_index || cause == kNoCause) {
      view.detail = fmt::format("follows \"{}\", which is {}", before, to_string(dependency));
    } else {
      view.detail = fmt::format("follows \"{}\", which cannot run because \"{}\" is {}", before,
                                plan.migrations[cause].id, to_string(readiness_of[cause]));
    }
    break;
  }
  return view;
}

}  // namespace engine_detail

std::vector<MigrationView> plan_view(const Plan& plan, const State& state, const PlanIndex* given) {
  // By plan position, not by id: with 1,000 migrations, maps keyed by id strings (allocated and
  // compared over and over) were most of this function (docs/PERFORMANCE.md "(b)").
  std::optional<PlanIndex> built;
  if (given == nullptr) built = index_plan(plan);
  const PlanIndex& index = given != nullptr ? *given : *built;
  std::vector<MigrationView> views;
  views.reserve(plan.migrations.size());
  std::vector<Readiness> readiness_of(plan.migrations.size(), Readiness::Applied);
  // The migration that is the reason a migration cannot run (itself, or one it follows).
  std::vector<std::size_t> cause_of(plan.migrations.size(), kNoCause);
  std::vector<const MigrationRecord*> record_of(plan.migrations.size(), nullptr);
  for (const MigrationRecord& record : state.migrations) {
    const Migration* migration = in_plan(plan, &index, record.id);
    if (migration == nullptr) continue;
    // The first record of an id wins, as State::find does.
    const MigrationRecord*& slot =
        record_of[static_cast<std::size_t>(migration - plan.migrations.data())];
    if (slot == nullptr) slot = &record;
  }
  for (const std::size_t position : index.order) {
    MigrationView view = view_of(plan, state, index, position, record_of[position], readiness_of,
                                 cause_of, cause_of[position]);
    readiness_of[position] = view.readiness;
    views.push_back(std::move(view));
  }
  return views;
}

namespace engine_detail {

bool fails_attempt(const MigrationView& view) {
  return view.readiness == Readiness::Blocked &&
         (view.definition_changed || view.migration->policy == Policy::Required);
}

Unrunnable unrunnable(const MigrationView& view) {
  if (view.definition_changed) {
    return Unrunnable{view.migration, fmt::format("migration \"{}\" cannot run: {}",
                                                  view.migration->id, view.detail)};
  }
  return Unrunnable{view.migration, fmt::format("required migration \"{}\" cannot run: {}",
                                                view.migration->id, view.detail)};
}

}  // namespace engine_detail

std::optional<Unrunnable> required_work_blocked(const std::vector<MigrationView>& views) {
  for (const MigrationView& view : views) {
    if (fails_attempt(view)) return unrunnable(view);
  }
  return std::nullopt;
}

std::optional<Unrunnable> required_work_held(const std::vector<MigrationView>& views) {
  for (const MigrationView& view : views) {
    if (view.readiness != Readiness::Held || view.migration->policy != Policy::Required) continue;
    return Unrunnable{view.migration, fmt::format("required migration \"{}\" is held: {}",
                                                  view.migration->id, view.detail)};
  }
  return std::nullopt;
}

namespace {

// What undoing `record` (defined by `definition`, nullptr when unreadable) takes.
StaleView undo_view(const MigrationRecord& record, const Migration* definition) {
  StaleView view;
  view.record = &record;
  view.definition = definition;
  if (record.state == MigrationState::Undone) return view;
  if (definition == nullptr) {
    view.blocker = "its recorded definition cannot be read";
    view.pending = true;
  } else if (definition->kept_when_stale() || record.decision == OperatorDecision::Declined) {
    view.kept = true;
  } else if (record.state == MigrationState::Failed && !record.undo_steps.empty()) {
    view.pending = true;
    view.blocker =
        fmt::format("its undo failed: {} (run `bootstate retry {}`)", record.message, record.id);
  } else {
    std::vector<UndoItem> items = undo_items(*definition, record, view.blocker);
    view.pending = !view.blocker.empty() ||
                   std::any_of(items.begin(), items.end(), [](const auto& i) { return !i.done; }) ||
                   record.state != MigrationState::Undone;
  }
  return view;
}

}  // namespace

namespace engine_detail {

std::optional<StaleView> stale_of(const MigrationRecord& record, const Plan& plan,
                                  const std::map<std::string, Migration>& recorded,
                                  const PlanIndex* index) {
  if (!record.touched() || in_plan(plan, index, record.id) != nullptr) return std::nullopt;
  auto found = recorded.find(record.id);
  return undo_view(record, found == recorded.end() ? nullptr : &found->second);
}

}  // namespace engine_detail

std::vector<StaleView> stale_view(const State& state, const Plan& plan,
                                  const std::map<std::string, Migration>& recorded,
                                  const PlanIndex* index) {
  std::vector<StaleView> views;
  for (auto record = state.migrations.rbegin(); record != state.migrations.rend(); ++record) {
    if (auto view = stale_of(*record, plan, recorded, index)) views.push_back(std::move(*view));
  }
  return views;
}

std::vector<StaleView> failed_switch_view(const State& state, const Plan& plan,
                                          const BootFacts& facts) {
  std::vector<StaleView> views;
  const bool cancelled = attempt_cancelled(state);
  if (!facts.switch_attempt() || !state.attempt ||
      (state.attempt->state != AttemptState::Failed && !cancelled) ||
      state.attempt->generation != facts.current_generation ||
      state.attempt->plan_digest != plan.digest) {
    return views;
  }
  for (auto record = state.migrations.rbegin(); record != state.migrations.rend(); ++record) {
    const Migration* migration = plan.find(record->id);
    if (migration == nullptr || !record->touched() || record->attempt != state.attempt->number ||
        record->digest != migration->digest) {
      continue;
    }
    const bool unfinished = record->state == MigrationState::Failed ||
                            record->state == MigrationState::Running ||
                            record->state == MigrationState::Undone;
    const bool applied_then_cancelled = cancelled && record->state == MigrationState::Applied;
    if (unfinished || applied_then_cancelled) views.push_back(undo_view(*record, migration));
  }
  return views;
}

bool work_remains(const State& state, const Plan& plan,
                  const std::map<std::string, Migration>& recorded, const PlanIndex* index) {
  for (const MigrationView& view : plan_view(plan, state, index)) {
    if (view.readiness == Readiness::Runnable || view.readiness == Readiness::Waiting) return true;
  }
  for (const StaleView& view : stale_view(state, plan, recorded, index)) {
    if (!view.kept && view.pending) return true;
  }
  return false;
}

bool attempt_cancelled(const State& state) {
  return state.attempt && state.attempt->state == AttemptState::Abandoned;
}

std::string_view to_string(Readiness readiness) {
  switch (readiness) {
    case Readiness::Applied:
      return "applied";
    case Readiness::Runnable:
      return "runnable";
    case Readiness::Waiting:
      return "waiting";
    case Readiness::NeedsAccept:
      return "needs accept";
    case Readiness::Declined:
      return "declined";
    case Readiness::Failed:
      return "failed";
    case Readiness::Blocked:
      return "blocked";
    case Readiness::Held:
      return "held";
  }
  return "invalid";
}

std::string_view to_string(ActionKind kind) {
  constexpr std::string_view names[] = {"none",       "bookkeeping", "take-backup",   "run-step",
                                        "check-step", "revert-step", "restore-backup"};
  return names[static_cast<std::size_t>(kind)];
}

std::string_view to_string(BootActionKind kind) {
  constexpr std::string_view names[] = {"mark-bad", "rearm", "mark-good", "one-shot-to-last-good"};
  return names[static_cast<std::size_t>(kind)];
}

}  // namespace bootstate

// Helpers shared by the engine's files; not part of its interface.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/transitions.hpp"

namespace bootstate::engine_detail {

// One piece of undoing a stale migration, in the order it must happen.
struct UndoItem {
  ActionKind kind = ActionKind::RunStep;  // RunStep (an undo step), RevertStep, RestoreBackup
  const Step* step = nullptr;             // the undo step, or the forward step to revert
  bool done = false;
};

// The undo work of a stale migration. `blocker` is set when it cannot be undone.
std::vector<UndoItem> undo_items(const Migration& definition, const MigrationRecord& record,
                                 std::string& blocker);

// Record of step `id` in `records`, or nullptr.
const StepRecord* find_step(const std::vector<StepRecord>& records, std::string_view id);
StepRecord* find_step(std::vector<StepRecord>& records, std::string_view id);

// The definition of migration `id`: the plan's, else the recorded (stale) one.
const Migration* definition_of(const EngineInput& input, std::string_view id);

// A step that asked for a reboot finished in this boot, or a step awaits a reboot that has not
// happened yet: nothing more runs until the machine reboots.
bool reboot_pending(const State& state, const EngineInput& input);

// The record asks for a reboot in this boot (reboot_pending's test of one record).
bool asks_reboot(const MigrationRecord& record, const EngineInput& input);

// "No migration is the cause": plan_view's mark for an applied or runnable migration.
inline constexpr std::size_t kNoCause = static_cast<std::size_t>(-1);

// plan_view's view of the migration at plan `position`, whose (first) record is `record`, given
// the readiness and the cause (kNoCause, itself, or one it follows) of the migrations before it
// in execution order; `cause_out` receives its own cause. The decision cache recomputes one
// migration with it, so a cached view is the one plan_view would make.
MigrationView view_of(const Plan& plan, const State& state, const PlanIndex& index,
                      std::size_t position, const MigrationRecord* record,
                      const std::vector<Readiness>& readiness_of,
                      const std::vector<std::size_t>& cause_of, std::size_t& cause_out);

// required_work_blocked's test of one view, and its answer for that view.
bool fails_attempt(const MigrationView& view);
Unrunnable unrunnable(const MigrationView& view);

// stale_view's entry for one record: nullopt when it is in the plan or never touched the machine.
std::optional<StaleView> stale_of(const MigrationRecord& record, const Plan& plan,
                                  const std::map<std::string, Migration>& recorded,
                                  const PlanIndex* index);

// The first forward step of `migration` not done or skipped, or nullptr.
const Step* open_step(const Migration& migration, const MigrationRecord* record);

// Some step was completed in this boot (progress re-arms the boot counter, semantics 6).
bool progress_this_boot(const State& state, const BootFacts& facts);

// A step is "started" once it has ever been run: its effect may be on the machine.
bool started(const StepRecord& record);

// A live switch whose generation has no attempt of this plan (reconcile opened none: nothing
// to do): the run leaves everything as it is, including the booted generation's attempt.
bool switch_idle(const State& state, const EngineInput& input);

// An attempt in progress fails with `reason` (through the transition table); otherwise nothing.
Expected<void> fail_attempt(State& state, const std::string& reason, std::int64_t now_usec);

// What Decision::no_record says of `state` when the migration has no record in it.
Decision::NoRecordIn no_record_in(const State& state);

}  // namespace bootstate::engine_detail

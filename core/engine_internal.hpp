// Helpers shared by the engine's files; not part of its interface.
#pragma once

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

// Some step was completed in this boot (progress re-arms the boot counter, semantics 6).
bool progress_this_boot(const State& state, const BootFacts& facts);

// A step is "started" once it has ever been run: its effect may be on the machine.
bool started(const StepRecord& record);

// A live switch whose generation has no attempt of this plan (reconcile opened none: nothing
// to do): the run leaves everything as it is, including the booted generation's attempt.
bool switch_idle(const State& state, const EngineInput& input);

// An attempt in progress fails with `reason` (through the transition table); otherwise nothing.
Expected<void> fail_attempt(State& state, const std::string& reason, std::int64_t now_usec);

}  // namespace bootstate::engine_detail

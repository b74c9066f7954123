// What booting a generation will do, computed by the engine itself: the phase runner is run in
// memory, boot after boot, against a copy of the state, with executors that succeed without
// touching anything. So `preview` can never disagree with what `run` decides.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/choices.hpp"
#include "core/engine.hpp"
#include "core/interfaces.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

struct PreviewAction {
  int boot = 1;  // 1 = the first boot of the generation
  Phase phase = Phase::PostActivation;
  std::string migration;
  std::string step;    // empty for backup actions
  std::string action;  // "run", "undo", "revert", "backup", "restore-backup"
  bool irreversible = false;
  bool reboot_after = false;  // the step asks for a reboot after it
  StepPreview detail;         // from the step's executor (describe())
};

struct PreviewReport {
  std::string generation;
  std::vector<PreviewAction> actions;  // in the order they will happen
  int boots = 0;                       // boots until the attempt completes (0: nothing to do)
  std::vector<std::string> blockers;   // what stops it, in words (exit 1)
  std::vector<std::string> notes;      // waiting for accept, kept stale migrations, changes
  bool initrd_work = false;     // some work runs in an initrd phase: a live switch cannot do it
  std::vector<ItemView> items;  // what the plan's checks report about the machine as it is
};

// `executors` give describe() details (and blockers) per step kind; missing kinds are described
// as not available in this build. `booted_entry` is the current boot's loader view (counting).
// `items`: what the plan's checks reported when run just now (run_checks); an open error item
// is a blocker naming the `bootstate choose` commands. The resolutions chosen for the plan's
// generation are previewed as the migrations they become.
PreviewReport preview_plan(const State& state, const Plan& plan,
                           const std::map<StepKind, StepExecutor*>& executors,
                           const std::string& root, const std::vector<CheckItem>& items = {});

}  // namespace bootstate

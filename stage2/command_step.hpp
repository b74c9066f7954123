// The executor of `command` steps: runs the step's argv directly (never through a shell) in a
// clean environment, with the step's timeout, its output in the step log and the journal.
#pragma once

#include <string>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate {

// The PATH every command step gets: NixOS wrappers and the system profile first, then the
// usual FHS directories (for --root trees and non-NixOS test machines).
inline constexpr const char* kStepPath =
    "/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
    "/usr/bin:/sbin:/bin";

// The complete environment of a command step, "KEY=VALUE" in this order: PATH, LANG=C.UTF-8,
// HOME=<work_dir>; then the step's `environment` (which may replace those three); then
// BOOTSTATE_PHASE, _MIGRATION, _STEP, _ATTEMPT, _GENERATION, _ROOT, _WORK_DIR (the step's own
// BOOTSTATE_* variables are dropped: the command relies on these). Nothing comes from
// bootstate's own environment.
std::vector<std::string> step_environment(const StepContext& context);

class CommandStepExecutor : public StepExecutor {
 public:
  // `runner` must outlive the executor.
  explicit CommandStepExecutor(ProcessRunner& runner) : runner_(runner) {}

  // Runs the step's argv with its timeout; output to context.log_path and the journal
  // (SYSLOG_IDENTIFIER=bootstate-<migration>-<step>). ok when it exited 0; message and
  // exit_status as the runner reports them ("exit status 3", "timed out after 60 s").
  StepOutcome run(const StepContext& context) override;
  // Runs the step's `check` argv (same environment, timeout and log): Applied when it exits 0,
  // NotApplied when it exits otherwise or cannot run, Unknown when the step has no check.
  CheckResult check(const StepContext& context) override;
  StepOutcome interrupted_report(const StepContext& context) override;
  // Command steps cannot revert themselves (a migration's explicit `undo` steps are separate
  // steps): always ok=false with a message saying so.
  StepOutcome revert(const StepContext& context) override;
  // The step's `preview` text (else "runs <argv>") and "check: <argv>" when it has a check;
  // detail_json is {"command":[…],"check":[…],"timeout":N}. Runs nothing.
  StepPreview describe(const StepContext& context) override;

 private:
  ProcessSpec spec_for(const StepContext& context, const std::vector<std::string>& argv) const;

  ProcessRunner& runner_;
};

}  // namespace bootstate

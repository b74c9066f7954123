// Runs a plan's checks as child processes, like command steps (stage2/command_step.hpp): argv
// executed directly (no shell), a clean environment, the check's timeout killing its whole
// process group, stdout captured in memory and bounded, stderr to the journal.
#pragma once

#include <string>
#include <vector>

#include "core/check_items.hpp"

namespace bootstate {

// The complete environment of a check: PATH (kStepPath), LANG=C.UTF-8, HOME=/, then
// BOOTSTATE_PHASE, _CHECK, _ATTEMPT, _GENERATION, _ROOT. Nothing from bootstate's own.
std::vector<std::string> check_environment(const Check& check, const CheckRunContext& context);

class ProcessCheckRunner final : public CheckRunner {
 public:
  // `runner` must outlive this.
  explicit ProcessCheckRunner(ProcessRunner& runner) : runner_(runner) {}
  // Captures at most kMaxCheckOutputBytes + 1 bytes of stdout (one more tells that the check
  // printed too much); stderr goes to the journal as bootstate-check-ID.
  ProcessResult run(const Check& check, const CheckRunContext& context) override;

 private:
  ProcessRunner& runner_;
};

}  // namespace bootstate

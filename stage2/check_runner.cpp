#include "stage2/check_runner.hpp"

#include "stage2/account.hpp"
#include "stage2/command_step.hpp"

namespace bootstate {

std::vector<std::string> check_environment(const Check& check, const CheckRunContext& context) {
  return {
      fmt::format("PATH={}", kStepPath),
      "LANG=C.UTF-8",
      "HOME=/",
      fmt::format("BOOTSTATE_PHASE={}", to_string(context.phase)),
      fmt::format("BOOTSTATE_CHECK={}", check.id),
      fmt::format("BOOTSTATE_ATTEMPT={}", context.attempt),
      fmt::format("BOOTSTATE_GENERATION={}", context.generation),
      fmt::format("BOOTSTATE_ROOT={}", context.root),
  };
}

namespace {

// The check's `user`/`group` applied to its spec (identity, HOME/USER/LOGNAME), as for steps.
Expected<void> run_as_account(const Check& check, Phase phase, ProcessSpec& spec) {
  CommandSpec command;
  command.user = check.user;
  command.group = check.group;
  auto account = resolve_step_account(command, phase);
  if (!account) return account.error();
  if (!*account) return {};
  set_account_environment(spec.environment, **account);
  spec.identity = (*account)->identity;
  return {};
}

}  // namespace

ProcessResult ProcessCheckRunner::run(const Check& check, const CheckRunContext& context) {
  ProcessSpec spec;
  spec.argv = check.argv;
  spec.environment = check_environment(check, context);
  spec.work_dir = std::string(1, '/');  // (a literal assignment trips GCC 12 -Wrestrict)
  spec.timeout_seconds = check.timeout_seconds;
  spec.capture_stdout = true;
  spec.log_limit_bytes = kMaxCheckOutputBytes + 1;
  spec.journal_identifier = fmt::format("bootstate-check-{}", check.id);
  if (auto as_account = run_as_account(check, context.phase, spec); !as_account) {
    // Not run at all: the check fails (an error item of its own says why), never passes.
    ProcessResult refused;
    refused.message = as_account.error().message;
    return refused;
  }
  return runner_.run(spec);
}

}  // namespace bootstate

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

ProcessResult ProcessCheckRunner::run(const Check& check, const CheckRunContext& context) {
  ProcessSpec spec;
  spec.argv = check.argv;
  spec.environment = check_environment(check, context);
  spec.work_dir = std::string(1, '/');  // (a literal assignment trips GCC 12 -Wrestrict)
  spec.timeout_seconds = check.timeout_seconds;
  spec.capture_stdout = true;
  spec.log_limit_bytes = kMaxCheckOutputBytes + 1;
  spec.journal_identifier = fmt::format("bootstate-check-{}", check.id);
  // As the check's `user`/`group`, resolved like a command step's (stage2/account.hpp). Its
  // work directory stays "/", never handed to the user: a check looks, it writes nothing.
  auto account = resolve_account(check.user, check.group, check.phase);
  if (!account) {
    ProcessResult not_started;  // an error item of its own (run_checks), never a pass
    not_started.message = account.error().message;
    return not_started;
  }
  if (*account) {
    set_account_environment(**account, spec.environment, {});
    spec.identity = (*account)->identity;
  }
  return runner_.run(spec);
}

}  // namespace bootstate

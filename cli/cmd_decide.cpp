// accept, decline, retry: durable operator decisions, one commit each.
#include <cstdio>

#include "cli/commands.hpp"
#include "core/operator.hpp"
#include "core/slot_files.hpp"
#include "core/store.hpp"

namespace bootstate::cli {

int decision_command(const Machine& machine) {
  const Options& options = machine.options();
  auto facts = machine.boot_facts();
  if (!facts) return report_error(facts.error());
  auto plan = machine.booted_plan(std::nullopt, *facts);
  if (!plan) return report_error(plan.error());
  auto esp = machine.esp();
  if (!esp) return report_error(esp.error());
  SlotFiles slots(*esp + "/bootstate");
  StateStore store(slots);
  auto loaded = store.load();
  if (!loaded) return report_error(loaded.error());

  Expected<State> decided = Error{};
  const char* verb = "";
  switch (options.command) {
    case Command::Accept:
      decided = accept_migration(loaded->state, *plan, options.argument);
      verb = "accepted";
      break;
    case Command::Decline:
      decided = decline_migration(loaded->state, *plan, options.argument);
      verb = "declined";
      break;
    default:
      decided = retry_migration(loaded->state, *plan, options.argument);
      verb = "will be retried";
      break;
  }
  if (!decided) return report_error(decided.error());
  if (auto committed = store.commit(*decided); !committed) return report_error(committed.error());
  std::printf(
      "migration \"%s\" %s; it takes effect at the next `bootstate run` (post-activation "
      "now, or the next boot)\n",
      options.argument.c_str(), verb);
  return kExitOk;
}

}  // namespace bootstate::cli

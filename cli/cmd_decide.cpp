// accept, decline, retry: durable operator decisions, one commit each.
//
// Load, decide and commit happen under the store lock (core/store_lock.hpp): a decision taken
// while `run` advances the phase waits for it and then applies to the state the run left,
// instead of being acknowledged and then overwritten by the run's next commit.
#include <chrono>
#include <cstdio>

#include "bootloader/systemd_boot.hpp"
#include "cli/commands.hpp"
#include "core/operator.hpp"
#include "core/slot_files.hpp"
#include "core/store.hpp"
#include "core/store_lock.hpp"

namespace bootstate::cli {
namespace {

// Long enough for any phase a person would wait for; after it, nothing changed (exit 2) and
// the message names the holder. Ctrl-C before then changes nothing either.
constexpr std::chrono::minutes kDecisionLockWait{15};

// A failed generation's entry stays +0-DONE (the builder never renames existing entries), and
// systemd-boot would keep skipping it: give it its tries back so the retry is booted. The
// retry is committed already; a rename that fails says what to do and exits 1.
int rearm_after_retry(const Machine& machine, const std::string& esp, const BootFacts& facts,
                      const Plan& plan) {
  const std::string generation = plan.generation.empty() || plan.generation == "/run/booted-system"
                                     ? facts.booted_generation
                                     : plan.generation;
  if (generation.empty()) return kExitOk;
  auto boot_partition = machine.boot_partition(esp);
  if (!boot_partition) return report_error(boot_partition.error());
  SystemdBoot loader(machine.root(), esp, SystemdBoot::kTriesAsBooted, facts.booted_generation,
                     *boot_partition);
  auto rearmed = loader.rearm_generation(generation);
  if (!rearmed) {
    std::fprintf(stderr,
                 "bootstate: the retry is recorded, but the boot entry of %s could not be "
                 "re-armed, so systemd-boot may skip it: %s\n",
                 generation.c_str(), rearmed.error().message.c_str());
    return kExitFailed;
  }
  for (const std::string& file : *rearmed) {
    std::printf("boot entry of %s re-armed: %s\n", generation.c_str(), file.c_str());
  }
  return kExitOk;
}

}  // namespace

int decision_command(const Machine& machine) {
  const Options& options = machine.options();
  auto facts = machine.boot_facts();
  if (!facts) return report_error(facts.error());
  auto plan = machine.booted_plan(std::nullopt, *facts);
  if (!plan) return report_error(plan.error());
  auto esp = machine.esp();
  if (!esp) return report_error(esp.error());
  const std::string lock_path = machine.rooted(kStoreLockPath);
  const std::string directory = *esp + "/bootstate";
  if (auto access = machine.require_access(
          {lock_path, directory, directory + "/state.0", directory + "/state.1"}, true);
      !access) {
    return report_error(access.error());
  }
  const std::string holder =
      fmt::format("bootstate {} {}", command_name(options.command), options.argument);
  auto lock = StoreLock::acquire(lock_path, holder, kDecisionLockWait, [](const std::string& who) {
    std::fprintf(stderr,
                 "bootstate: waiting for the state store, held by %s (Ctrl-C gives up and "
                 "changes nothing)\n",
                 who.c_str());
  });
  if (!lock) return report_error(lock.error());

  SlotFiles slots(directory);
  StateStore store(slots);
  auto loaded = store.load();
  if (!loaded) return report_error(loaded.error());
  for (const std::string& warning : loaded->warnings) {
    std::fprintf(stderr, "Warning: %s\n", warning.c_str());
  }

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
  if (options.command == Command::Retry) return rearm_after_retry(machine, *esp, *facts, *plan);
  return kExitOk;
}

}  // namespace bootstate::cli

// accept, decline, retry: durable operator decisions, one commit each.
//
// Load, decide and commit happen under the store lock (core/store_lock.hpp): a decision taken
// while `run` advances the phase waits for it and then applies to the state the run left,
// instead of being acknowledged and then overwritten by the run's next commit.
#include <chrono>
#include <cstdio>

#include "bootloader/systemd_boot.hpp"
#include "cli/commands.hpp"
#include "cli/crash_hook.hpp"
#include "cli/decision_store.hpp"
#include "core/operator.hpp"
#include "core/slot_files.hpp"
#include "core/store.hpp"
#include "core/store_lock.hpp"

namespace bootstate::cli {
namespace {

// Long enough for any phase a person would wait for; after it, nothing changed (exit 2) and
// the message names the holder. Ctrl-C before then changes nothing either.
constexpr std::chrono::minutes kDecisionLockWait{15};

// A retry of `id` already committed: its attempt reopened and the migration pending (or
// running) again. Its re-arm may still be owed: a power cut or a failed rename between the
// commit and the rename leaves the entry +0-DONE, and only running `retry` again can fix that.
// For a check (no record): its generation's attempt is in progress again.
bool retry_recorded(const State& state, const Plan& plan, const std::string& generation,
                    const std::string& id) {
  const MigrationRecord* record = state.find(id);
  const bool reopened = state.attempt && state.attempt->generation == generation &&
                        state.attempt->state == AttemptState::InProgress;
  if (record == nullptr) return reopened && plan.find_check(id) != nullptr;
  return reopened &&
         (record->state == MigrationState::Pending || record->state == MigrationState::Running);
}

// A failed generation's entry stays +0-DONE (the builder never renames existing entries), and
// systemd-boot would keep skipping it: give it its tries back so the retry is booted. The
// retry is committed already; a rename that fails says what to do and exits 1. `refused`: this
// run's retry was refused because it is recorded already; it stands (exit 2, nothing changed)
// unless an entry was still owed its re-arm.
int rearm_after_retry(const Machine& machine, const std::string& esp, const BootFacts& facts,
                      const Plan& plan, const Error* refused = nullptr) {
  const std::string generation = plan_generation(facts, plan);
  if (generation.empty()) return kExitOk;
  auto rearmed = rearm_entries(machine, esp, facts, generation);
  if (!rearmed) {
    std::fprintf(stderr,
                 "bootstate: the retry is recorded, but the boot entry of %s could not be "
                 "re-armed, so systemd-boot may skip it (run `bootstate retry` again once the "
                 "cause is fixed): %s\n",
                 generation.c_str(), rearmed.error().message.c_str());
    return kExitFailed;
  }
  if (refused != nullptr) {
    if (rearmed->empty()) return report_error(*refused);
    std::printf("migration \"%s\": the retry was recorded already, its re-arm was not\n",
                machine.options().argument.c_str());
  }
  print_rearmed(generation, *rearmed);
  return kExitOk;
}

}  // namespace

std::string plan_generation(const BootFacts& facts, const Plan& plan) {
  return plan.generation.empty() || plan.generation == "/run/booted-system"
             ? facts.booted_generation
             : plan.generation;
}

Expected<OperatorBootLoader> operator_boot_loader(const Machine& machine, const std::string& esp,
                                                  const BootFacts& facts) {
  auto boot_partition = machine.boot_partition(esp);
  if (!boot_partition) return boot_partition.error();
  OperatorBootLoader opened;
  opened.systemd_boot = std::make_unique<SystemdBoot>(
      machine.root(), esp, SystemdBoot::kTriesAsBooted, facts.booted_generation, *boot_partition);
  opened.loader = &maybe_crashing(*opened.systemd_boot, opened.crash_hook);
  return opened;
}

Expected<std::vector<std::string>> rearm_entries(const Machine& machine, const std::string& esp,
                                                 const BootFacts& facts,
                                                 const std::string& generation) {
  auto opened = operator_boot_loader(machine, esp, facts);
  if (!opened) return opened.error();
  return opened->loader->rearm_generation(generation);
}

void print_rearmed(const std::string& generation, const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    std::printf("boot entry of %s re-armed: %s\n", generation.c_str(), file.c_str());
  }
}

Expected<void> DecisionStore::check_access(const Machine& machine, const std::string& esp) {
  const std::string directory = esp + "/bootstate";
  return machine.require_access(
      {machine.rooted(kStoreLockPath), directory, directory + "/state.0", directory + "/state.1"},
      true);
}

Expected<DecisionStore> DecisionStore::open(const Machine& machine, const std::string& esp) {
  const Options& options = machine.options();
  const std::string lock_path = machine.rooted(kStoreLockPath);
  const std::string directory = esp + "/bootstate";
  BOOTSTATE_TRY(check_access(machine, esp));
  const std::string holder =
      fmt::format("bootstate {} {}", command_name(options.command), options.argument);
  auto lock = StoreLock::acquire(lock_path, holder, kDecisionLockWait, [](const std::string& who) {
    std::fprintf(stderr,
                 "bootstate: waiting for the state store, held by %s (Ctrl-C gives up and "
                 "changes nothing)\n",
                 who.c_str());
  });
  if (!lock) return lock.error();
  DecisionStore opened(std::move(*lock), directory);
  auto loaded = opened.store_->load();
  if (!loaded) return loaded.error();
  for (const std::string& warning : loaded->warnings) {
    std::fprintf(stderr, "Warning: %s\n", warning.c_str());
  }
  opened.state = std::move(loaded->state);
  return opened;
}

DecisionStore::DecisionStore(StoreLock lock, const std::string& directory)
    : lock_(std::move(lock)),
      slot_files_(std::make_unique<SlotFiles>(directory)),
      store_(std::make_unique<StateStore>(maybe_crashing(*slot_files_, crash_hook_))) {}

Expected<void> DecisionStore::commit(const State& decided) {
  return store_->commit(decided);
}

int decision_command(const Machine& machine) {
  const Options& options = machine.options();
  auto facts = machine.boot_facts();
  if (!facts) return report_error(facts.error());
  auto plan = machine.booted_plan(std::nullopt, *facts);
  if (!plan) return report_error(plan.error());
  auto esp = machine.esp();
  if (!esp) return report_error(esp.error());
  auto store = DecisionStore::open(machine, *esp);
  if (!store) return report_error(store.error());

  Expected<State> decided = Error{};
  const char* verb = "";
  switch (options.command) {
    case Command::Accept:
      decided = accept_migration(store->state, *plan, options.argument);
      verb = "accepted";
      break;
    case Command::Decline:
      decided = decline_migration(store->state, *plan, options.argument);
      verb = "declined";
      break;
    default:
      decided = retry_migration(store->state, *plan, options.argument);
      verb = "will be retried";
      break;
  }
  if (!decided) {
    // Refused because the retry is recorded already: do the re-arm it may still owe (exit 0
    // when that renamed an entry; otherwise the refusal stands and nothing changed).
    if (options.command == Command::Retry &&
        retry_recorded(store->state, *plan, plan_generation(*facts, *plan), options.argument)) {
      return rearm_after_retry(machine, *esp, *facts, *plan, &decided.error());
    }
    return report_error(decided.error());
  }
  if (auto committed = store->commit(*decided); !committed) return report_error(committed.error());
  const std::string generation = plan_generation(*facts, *plan);
  if (options.command == Command::Retry && fell_back_from(store->state, generation)) {
    std::printf(
        "%s fell back to the last good generation: its next boot starts a new attempt, "
        "which runs \"%s\" again\n",
        generation.c_str(), options.argument.c_str());
  } else if (options.command == Command::Retry && store->state.find(options.argument) == nullptr) {
    std::printf("check \"%s\": the attempt of %s goes on; its next boot runs the checks again\n",
                options.argument.c_str(), generation.c_str());
  } else {
    std::printf(
        "migration \"%s\" %s; it takes effect at the next `bootstate run` (post-activation "
        "now, or the next boot)\n",
        options.argument.c_str(), verb);
  }
  if (options.command == Command::Retry) return rearm_after_retry(machine, *esp, *facts, *plan);
  return kExitOk;
}

}  // namespace bootstate::cli

// `bootstate run --phase P`: what the bootstate-*.service units execute.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include "bootloader/efivars.hpp"
#include "bootloader/esp.hpp"
#include "bootloader/systemd_boot.hpp"
#include "cli/commands.hpp"
#include "cli/crash_hook.hpp"
#include "cli/executors.hpp"
#include "cli/journal.hpp"
#include "cli/progress.hpp"
#include "core/directory.hpp"
#include "core/paths.hpp"
#include "core/phase_runner.hpp"
#include "core/read_file.hpp"
#include "core/slot_files.hpp"
#include "core/store_idle.hpp"
#include "core/store_lock.hpp"
#include "stage2/backup.hpp"
#include "stage2/safe_dirs.hpp"

namespace bootstate::cli {
namespace {

// In the initrd phases the plan comes from the initrd, which cannot name the toplevel it
// belongs to (the toplevel contains the initrd): docs/DESIGN.md "Plan" lets it say this.
constexpr std::string_view kBootedGenerationPlaceholder = "/run/booted-system";
// The initrd's copy of the plan (Machine::booted_plan).
constexpr const char* kInitrdPlan = "/etc/bootstate/plan.json";

// One bootstate at a time (a second run would see the first one's `running` steps as
// interrupted), and no decision command between this run's load and its last commit: the
// store lock (core/store_lock.hpp) is held for the whole phase. A second run waits this long,
// then refuses (exit 2) naming the holder; accept/decline/retry hold it only for milliseconds.
constexpr auto kRunLockWait = std::chrono::seconds(10);

Expected<StepPaths> make_step_paths(const std::string& data_dir, const Migration& migration,
                                    const Step& step, std::uint64_t attempt) {
  StepPaths paths;
  paths.work_dir = fmt::format("{}/work/{}/{}", data_dir, migration.id, step.id);
  std::string logs = data_dir + "/logs";
  paths.log_path = fmt::format("{}/{}-{}-{}.log", logs, attempt, migration.id, step.id);
  // The data directory is root's; below it nothing is followed: a planted symlink would
  // redirect root's writes (issue 13, item 12).
  BOOTSTATE_TRY(make_directories(data_dir));
  BOOTSTATE_TRY(
      stage2::make_directories_below(data_dir, fmt::format("work/{}/{}", migration.id, step.id)));
  BOOTSTATE_TRY(stage2::make_directories_below(data_dir, "logs"));
  return paths;
}

// The plan must be the booted generation's, or in a live switch the current system's
// (docs/DESIGN.md "A live switch"). A plan of the booted generation while another one is
// current (given with --plan) makes it a run for the booted generation.
Expected<void> check_generation(const Plan& plan, BootFacts& facts, Phase phase) {
  if (facts.switch_attempt() && plan.generation == facts.current_generation) return {};
  if (plan.generation == facts.booted_generation) {
    facts.current_generation.clear();
    return {};
  }
  if (phase != Phase::PostActivation && plan.generation == kBootedGenerationPlaceholder) return {};
  return make_error(
      ErrorCode::InvalidInput,
      "the plan belongs to generation {}, but the booted generation (init= on the "
      "kernel command line) is {}{}",
      plan.generation, facts.booted_generation.empty() ? "unknown" : facts.booted_generation,
      facts.switch_attempt() ? fmt::format(" and the current system (/run/current-system) is {}",
                                           facts.current_generation)
                             : "");
}

// A live switch to a generation without a plan file (the unit's --plan names the current
// system's): nothing to do for it, and nothing is wrong.
bool switched_to_generation_without_plan(const Machine& machine, const BootFacts& facts) {
  if (!facts.switch_attempt()) return false;
  const std::string own = machine.plan_file(facts.current_generation + "/bootstate/plan.json");
  const std::string& given = machine.options().plan;
  if (!given.empty() && machine.plan_file(given) != own) return false;
  struct stat info {};
  return ::lstat(own.c_str(), &info) != 0 && errno == ENOENT;
}

// How long the first initrd phase waits for the ESP's partition to appear: the unit starts
// once the root device is there, but udev may still be probing the other partitions.
constexpr auto kEspDeviceWait = std::chrono::seconds(30);
constexpr auto kEspDevicePoll = std::chrono::milliseconds(250);

// In the initrd nothing may have mounted the ESP yet: find it (the partition systemd-boot
// says it started from, else the first one typed as ESP) and mount it for this phase; the
// mount goes away with `mounted` when the phase ends.
Expected<std::string> esp_for_phase(const Machine& machine, Phase phase,
                                    std::optional<EspMount>& mounted) {
  auto esp = machine.esp();
  const Options& options = machine.options();
  if (esp || phase == Phase::PostActivation || !options.root.empty() || !options.esp.empty()) {
    return esp;
  }
  SystemdBoot loader("/", "/", 3, "");  // for its EFI variables only
  auto status = loader.loader_status();
  std::optional<std::string> partuuid = status ? status->device_part_uuid : std::nullopt;
  BlkidPartitionLookup lookup("/");
  const auto deadline = std::chrono::steady_clock::now() + kEspDeviceWait;
  auto choice = choose_esp("", partuuid, lookup);
  while (!choice && choice.error().code == ErrorCode::NotFound &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kEspDevicePoll);
    choice = choose_esp("", partuuid, lookup);
  }
  if (!choice) {
    std::string context = "finding the ESP to mount";
    if (!partuuid) {
      context += status ? " (systemd-boot did not set LoaderDevicePartUUID)"
                        : " (EFI variables unreadable: " + status.error().message + ")";
    }
    return choice.error().with_context(context);
  }
  auto mount = EspMount::mount(choice->device, "/run/bootstate/esp");
  if (!mount) return mount.error().with_context("mounting the ESP (" + choice->reason + ")");
  mounted.emplace(std::move(*mount));
  return mounted->path();
}

// With XBOOTLDR the entries are on $BOOT, which nothing has mounted in the initrd either: mount
// the first partition typed XBOOTLDR for this phase. Not fatal: without it the phase still runs
// and only the boot-counting renames fail (each says why). Called by the loader only when it
// needs $BOOT (SystemdBoot::find_boot_with): probing every disk on each initrd phase of every
// boot, XBOOTLDR or not, was the boot path's cost.
std::string mount_xbootldr(std::optional<EspMount>& mounted) {
  BlkidPartitionLookup lookup("/");
  auto typed = lookup.find_typed(kXbootldrTypeGuid);
  if (!typed) {
    std::fprintf(stderr, "bootstate: looking for an XBOOTLDR partition: %s\n",
                 typed.error().message.c_str());
    return std::string();
  }
  if (typed->empty()) return std::string();
  auto mount = EspMount::mount(typed->front(), "/run/bootstate/boot");
  if (!mount) {
    std::fprintf(stderr, "bootstate: mounting the XBOOTLDR partition: %s\n",
                 mount.error().message.c_str());
    return std::string();
  }
  mounted.emplace(std::move(*mount));
  return mounted->path();
}

// In the initrd, without --root or --boot and no $BOOT visible: one may still be on a disk.
bool xbootldr_may_be_unmounted(const Machine& machine, Phase phase, const std::string& boot) {
  const Options& options = machine.options();
  return boot.empty() && phase != Phase::PostActivation && options.root.empty() &&
         options.boot.empty();
}

int exit_status_of(const PhaseResult& result, const Options& options) {
  switch (result.exit) {
    case PhaseExit::Ok:
      return kExitOk;
    case PhaseExit::Failed:
    case PhaseExit::RebootRequired: {
      // The reason already went to the journal (and the terminal) as an event.
      int status = result.exit == PhaseExit::Failed ? kExitFailed : kExitReboot;
      // A failure with no fallback (already the last good generation, a stale migration that
      // cannot be undone) would come back after a reboot: the boot goes on, the unit failed.
      // A live switch never reboots (result.reboot is false there).
      if (!options.no_reboot && result.reboot) {
        if (auto rebooted = request_reboot(); !rebooted) {
          std::fprintf(stderr, "bootstate: %s\n", rebooted.error().message.c_str());
        }
      }
      return status;
    }
  }
  return kExitFailed;
}

// The plan file an idle run would parse, and its identity (core/store_idle.hpp); nullopt when it
// cannot be told without parsing (a live switch, no generation), and the run parses as always.
std::optional<PlanIdentity> certified_plan(const Machine& machine, Phase phase,
                                           const BootFacts& facts) {
  if (facts.switch_attempt() || facts.booted_generation.empty()) return std::nullopt;
  const Options& options = machine.options();
  std::string path;
  if (!options.plan.empty()) {
    path = machine.plan_file(options.plan);
  } else if (phase == Phase::PostActivation) {
    path = machine.plan_file(facts.target_generation());
  } else {
    path = machine.plan_file(kInitrdPlan);  // the copy booted_plan() reads first
    if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT &&
        !(options.root.empty() && phase == Phase::InitrdPreMount)) {
      // Then the generation's own, where the root file system is (as Machine::booted_plan).
      path = machine.plan_file(machine.root_fs(phase) == machine.root()
                                   ? facts.booted_generation
                                   : machine.root_fs(phase) +
                                         lexically_normal(facts.booted_generation));
    }
  }
  auto identity = identify_plan(path);
  if (!identity) return std::nullopt;
  return *identity;
}

// Writes the idle certificate for the state this run left (it is settled: PhaseResult). In the
// initrd phases without --plan the plan read may have been the generation's own (the initrd's
// copy did not parse): certified only when the file whose identity was taken holds that plan.
// Not fatal: without a certificate the next idle run parses the state, as before.
void certify_idle(const Machine& machine, Phase phase, SlotStorage& storage,
                  const StateStore& durable, const Plan& plan, const std::string& plan_generation,
                  const PlanIdentity& identity) {
  if (phase != Phase::PostActivation && machine.options().plan.empty()) {
    auto read = read_file(identity.path);
    auto copy = read ? parse_plan(*read, identity.path) : Expected<Plan>(read.error());
    if (!copy || copy->digest != plan.digest || copy->generation != plan_generation) return;
  }
  IdleClaim claim;
  claim.generation = plan.generation;
  claim.plan_generation = plan_generation;
  claim.plan_digest = plan.digest;
  claim.plan = identity;
  auto written = write_idle_certificate(storage, durable.newest_slot(), durable.sequence(), claim);
  if (!written) {
    std::fprintf(stderr,
                 "bootstate: the idle certificate was not written (the next idle run "
                 "reads the whole state): %s\n",
                 written.error().message.c_str());
  }
}

}  // namespace

int run_command(const Machine& machine) {
  const Options& options = machine.options();
  const Phase phase = *options.phase;
  // /run/current-system is stage 2's: the initrd phases always work for the booted generation
  // (and do not read the link).
  auto facts =
      machine.boot_facts({.current_system = phase == Phase::PostActivation, .clock = false});
  if (!facts) return report_error(facts.error());
  if (switched_to_generation_without_plan(machine, *facts)) {
    std::fprintf(stderr, "bootstate: the switch to %s: no plan at %s, nothing to do\n",
                 facts->current_generation.c_str(),
                 machine.plan_file(facts->current_generation + "/bootstate/plan.json").c_str());
    return kExitOk;
  }
  // The plan file's identity before anything reads it (core/store_idle.hpp): a write to the
  // plan after this point makes the certificate written below name an older identity.
  const std::optional<PlanIdentity> plan_identity = certified_plan(machine, phase, *facts);
  // The lock first: it also creates /run/bootstate, where the initrd mounts the ESP.
  const std::string lock_path = machine.rooted(kStoreLockPath);
  if (auto access = machine.require_access({lock_path}, true); !access) {
    return report_error(access.error());
  }
  auto lock = StoreLock::acquire(
      lock_path, fmt::format("bootstate run --phase {}", to_string(phase)), kRunLockWait,
      [](const std::string& holder) {
        std::fprintf(stderr, "bootstate: waiting for the state store, held by %s\n",
                     holder.c_str());
      });
  if (!lock) return report_error(lock.error());
  if (phase != Phase::PostActivation && options.root.empty()) {
    // Not fatal: without EFI variables the phase still runs, with boot counting "impossible".
    if (auto efivars = EfiVariables("/").mount_if_missing(); !efivars) {
      std::fprintf(stderr, "bootstate: %s\n", efivars.error().message.c_str());
    }
  }
  std::optional<EspMount> mounted_esp;
  auto esp = esp_for_phase(machine, phase, mounted_esp);
  if (!esp) return report_error(esp.error());

  SlotFiles slot_files(*esp + "/bootstate");
  std::unique_ptr<SlotStorage> crash_hook;
  SlotStorage& storage = maybe_crashing(slot_files, crash_hook);
  if (plan_identity && idle_from_certificate(storage, IdleQuery{phase, *facts, *plan_identity,
                                                                kBootedGenerationPlaceholder})) {
    // Nothing to do, as the state committed last says and nothing changed since: done without
    // parsing the plan or the state (issue #17).
    return kExitOk;
  }
  facts->now_usec = Machine::wall_clock_usec();  // not read until here: see FactsToRead
  keep_freed_memory_for_reuse();
  auto plan = machine.booted_plan(phase, *facts);
  if (!plan) return report_error(plan.error());
  if (auto matches = check_generation(*plan, *facts, phase); !matches) {
    return report_error(matches.error());
  }
  const std::string plan_generation = plan->generation;
  // The placeholder stands for the booted generation from here on.
  plan->generation = facts->target_generation();
  StateStore durable(storage);
  StoreAccess store(durable);
  // A re-arm restores the counter the booted entry started with (LEFT + DONE); reading the
  // booted entry once, in the phase runner, is enough for that.
  std::optional<EspMount> mounted_boot;
  auto boot_partition = machine.boot_partition(*esp);  // XBOOTLDR
  if (!boot_partition) return report_error(boot_partition.error());
  SystemdBoot loader(machine.root(), *esp, SystemdBoot::kTriesAsBooted, facts->booted_generation,
                     *boot_partition);
  if (xbootldr_may_be_unmounted(machine, phase, *boot_partition)) {
    loader.find_boot_with([&mounted_boot] { return mount_xbootldr(mounted_boot); });
  }
  Executors executors;
  const std::string data_dir = machine.data_dir(phase);
  FileBackupStore backups(machine.root_fs(phase), data_dir + "/backups");
  // Asked once: both the journal sink and the progress lines print to a person at stderr.
  const bool to_stderr = isatty(STDERR_FILENO) || !options.root.empty();
  JournalSink events(to_stderr);
  // A unit (systemd sets INVOCATION_ID) whose output goes to the journal: progress also goes to
  // the console, where the operator watches the boot.
  const bool unit = std::getenv("INVOCATION_ID") != nullptr && !isatty(STDERR_FILENO);
  ProgressReporter progress(events, machine.rooted("/run/plymouth/pid"), to_stderr,
                            unit ? machine.rooted("/dev/console") : std::string());

  PhaseEffects effects;
  effects.store = &store;
  std::unique_ptr<BootLoader> loader_crash_hook;
  effects.boot_loader = &maybe_crashing(loader, loader_crash_hook);
  effects.backups = root_mounted(phase) ? &backups : nullptr;
  effects.executors = executors.by_kind();
  effects.paths = [&](const Migration& migration, const Step& step, std::uint64_t attempt) {
    auto paths = make_step_paths(data_dir, migration, step, attempt);
    if (paths) progress.step_paths(migration.id, step.id, paths->work_dir);
    return paths;
  };
  effects.events = &progress;
  effects.root = machine.root();
  effects.checks = &executors.checks();
  effects.jobs = options.jobs;  // --jobs: independent migrations' steps at once

  auto result = run_phase(phase, *plan, *facts, effects);
  if (!result) {
    // Exit 2 promises that nothing changed; after a commit of this run that is not true.
    if (slot_files.writes_done() == 0) return report_error(result.error());
    std::fprintf(stderr,
                 "bootstate: %s (after this run had already changed the state: see "
                 "`bootstate status`)\n",
                 result.error().message.c_str());
    return kExitFailed;
  }
  if (result->settled && plan_identity) {
    certify_idle(machine, phase, storage, durable, *plan, plan_generation, *plan_identity);
  }
  return exit_status_of(*result, options);
}

int report_error(const Error& error) {
  std::fprintf(stderr, "bootstate: %s\n", error.message.c_str());
  return kExitInvalid;
}

}  // namespace bootstate::cli

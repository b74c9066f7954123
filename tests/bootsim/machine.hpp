// One simulated boot end to end: firmware (firmware.hpp), then the three bootstate phases as
// the NixOS units run them, then boot-complete.target and systemd-bless-boot good.
//
// What ends a boot, as on a real machine:
//   exit 0 → the next phase; after post-activation, boot-complete.target → bless
//   exit 4 → bootstate asked for a reboot: the boot ends, unblessed
//   exit 1 → the phase failed: the unit fails, boot-complete.target is never reached
//   exit 2 (or anything else) → bootstate rejected its input: the simulation stops (error)
//   a power cut (before/after a phase, or bootstate killed by BOOTSTATE_TEST_CRASH_AT inside
//   one) or a kernel panic after the initrd phases
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tests/bootsim/firmware.hpp"

namespace bootsim {

enum class SimPhase { InitrdPreMount, PreSwitchRoot, PostActivation };
inline constexpr SimPhase kPhases[] = {SimPhase::InitrdPreMount, SimPhase::PreSwitchRoot,
                                       SimPhase::PostActivation};
std::string_view to_string(SimPhase phase);
std::optional<SimPhase> parse_sim_phase(std::string_view text);

// --cut-power [BOOT:]before|after:PHASE. boot 0 = every boot.
struct PowerCut {
  int boot = 0;
  bool before = true;
  SimPhase phase = SimPhase::InitrdPreMount;
};
std::optional<PowerCut> parse_power_cut(std::string_view text);

struct SimOptions {
  LoaderOptions loader;
  std::string bootstate;  // the binary, executed directly
  // Pass --plan explicitly to each phase (the booted generation's plan.json under the tree).
  bool explicit_plan = false;
  std::vector<std::string> extra_args;  // before the command, e.g. "--json"
  // Give bootstate --esp (and --boot when the loader has an XBOOTLDR mount); false: bootstate
  // must find both itself under --root.
  bool pass_partitions = true;
  std::vector<PowerCut> power_cuts;
  bool panic_every_boot = false;               // --panic-after-initrd
  std::vector<std::string> panic_generations;  // --panic-after-initrd=GEN: only these
};

struct PhaseRun {
  SimPhase phase = SimPhase::InitrdPreMount;
  int exit = -1;
  std::string output;  // stdout and stderr of bootstate, interleaved
};

enum class BootOutcome { Complete, RebootRequested, PhaseFailed, PowerCut, Panic };
std::string_view to_string(BootOutcome outcome);

struct BootRecord {
  int number = 0;
  FirmwareBoot firmware;
  std::vector<PhaseRun> phases;
  BootOutcome outcome = BootOutcome::Complete;
  std::string outcome_detail;  // which phase, which fault
  // systemd-bless-boot: only run when boot-complete.target is reached and
  // LoaderBootCountPath is set (systemd-bless-boot-generator's condition).
  std::optional<BlessOutcome> bless;
  std::vector<std::string> entries_after;  // entry file names when the boot ended
};

// Runs one boot. Errors: the firmware found nothing to boot, the tree is unusable, or
// bootstate exited with 2 or an unexpected status (the record so far is in the message).
Expected<BootRecord> simulate_boot(const SimOptions& options, int number);

// systemd-bless-boot good against the tree (exposed for the unit tests).
Expected<BlessOutcome> bless_good(const LoaderOptions& loader, const std::string& boot_count_path);

// bootstate ARGS against the tree: argv[0] = options.bootstate, then --root, --esp and --boot
// (unless !pass_partitions), then `args`.
struct CommandResult {
  int exit = -1;
  std::string output;
};
Expected<CommandResult> run_bootstate(const SimOptions& options,
                                      const std::vector<std::string>& args);

// "boot 2: nixos-b+3-0.conf → nixos-b+2-1.conf (default-pattern) /nix/store/…-b: initrd-pre-mount
// 0, pre-switch-root 0, post-activation 4 → reboot requested, not blessed"
std::string summary_line(const BootRecord& record);
// One JSON object (one line) for --json-log.
std::string json_record(const BootRecord& record);

}  // namespace bootsim

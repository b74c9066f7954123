// The executor of `firmware` steps (kind "firmware", phase post-activation; docs/FIRMWARE.md).
//
// It holds no fwupd code: every question goes to the `bootstate-fwupd` helper through the
// ProcessRunner, and the answer comes back as the JSON reply of helper_protocol.hpp. That keeps
// glib out of bootstate_firmware_step and so out of the `bootstate` binary.
//
// How a firmware step moves through a boot:
//   run() → `install`: done when the device runs the version; awaiting_reboot when fwupd
//   staged the update for the next boot (the engine records it and reboots); failed otherwise.
//   run() on a record with awaiting_reboot (the next boot) → `verify`: compares the running
//   version with the plan's, reads and clears fwupd's recorded result: done or failed.
// Firmware is machine state, not generation state: it is never undone (Migration::
// kept_when_stale), so the engine never calls revert() for it; revert() refuses anyway.
#pragma once

#include <cstdint>
#include <string>

#include "core/interfaces.hpp"
#include "firmware/helper_protocol.hpp"

namespace bootstate {

class FirmwareStepExecutor : public StepExecutor {
 public:
  // `runner` must outlive the executor. `helper_path` is the absolute path of
  // bootstate-fwupd (kDefaultFwupdHelper in an installed system).
  FirmwareStepExecutor(ProcessRunner& runner, std::string helper_path);

  // Installs (or, after the reboot fwupd asked for, verifies) the step's firmware. ok with
  // awaiting_reboot=true means: staged, reboot, then call run() again with the record that
  // says awaiting_reboot. The message is fwupd's own where it gave one.
  StepOutcome run(const StepContext& context) override;

  // Applied when the device runs the step's version now; NotApplied when it runs another;
  // Unknown when fwupd cannot be asked or the device is not there.
  CheckResult check(const StepContext& context) override;

  // Never undoes anything: ok=false, "firmware is machine state and is never undone".
  StepOutcome revert(const StepContext& context) override;

  // Device name, current → target version, irreversible=true, needs_reboot as fwupd says;
  // blocker when the device is missing, the cabinet targets another device or another
  // version, or fwupd does not answer. Writes nothing.
  StepPreview describe(const StepContext& context) override;

  // How long the helper may take to answer describe/check (it has its own deadline; the
  // runner's is kRunnerGraceSeconds later so the helper can still report what happened).
  static constexpr std::uint32_t kQueryTimeoutSeconds = 30;
  static constexpr std::uint32_t kRunnerGraceSeconds = 15;

 private:
  // Runs the helper and reads its reply. An error says why no trustworthy reply came (the
  // helper could not start, was killed, printed garbage, or contradicted its exit status).
  Expected<HelperReply> call(const StepContext& context, HelperCommand command,
                             std::uint32_t timeout_seconds);
  FirmwareSpec spec_for(const StepContext& context) const;

  ProcessRunner& runner_;
  std::string helper_path_;
};

// Where bootstate-fwupd is installed (CMAKE_INSTALL_FULL_LIBEXECDIR/bootstate/bootstate-fwupd).
extern const char* const kDefaultFwupdHelper;

}  // namespace bootstate

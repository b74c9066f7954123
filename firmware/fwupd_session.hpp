// A bounded conversation with the fwupd daemon over the system bus, through libfwupd.
//
// Only the `bootstate-fwupd` helper includes this: it is the one place where glib lives. The
// interface itself is glib-free (Expected, std::string) so the command logic in fwupd_main.cpp
// reads like the rest of bootstate.
//
// Every call shares one deadline: a watchdog thread cancels the GCancellable that every
// libfwupd call gets, so no call outlives `timeout` whatever the daemon does (not running,
// D-Bus activation hanging, an install that stalls).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// What fwupd says about one device, reduced to what the firmware step needs.
struct FwupdDeviceInfo {
  std::string id;  // fwupd's device id (40 hex digits)
  std::string name;
  std::string plugin;   // fwupd plugin that drives it ("uefi_capsule" stages for the next boot)
  std::string version;  // the version running now, as fwupd displays it
  std::vector<std::string> guids;
  bool updatable = false;
  bool needs_reboot = false;      // FWUPD_DEVICE_FLAG_NEEDS_REBOOT: staged, applied at reboot
  bool needs_shutdown = false;    // FWUPD_DEVICE_FLAG_NEEDS_SHUTDOWN: applied at power-off
  bool needs_activation = false;  // FWUPD_DEVICE_FLAG_NEEDS_ACTIVATION
  std::string update_state;       // fwupd_update_state_to_string(); "unknown" when none
  std::string update_error;       // fwupd's message for a failed update, "" when none
  std::string update_version;     // version of the release the recorded result is about
};

// One device a cabinet applies to (GetDetails), with the version the cabinet would install.
struct FwupdCabinetTarget {
  std::string device_id;  // empty when no device on this machine matches the cabinet
  std::string device_name;
  std::vector<std::string> guids;  // the GUIDs the cabinet's metadata targets
  std::string release_version;
  bool trusted = false;       // FWUPD_RELEASE_FLAG_TRUSTED_PAYLOAD
  bool needs_reboot = false;  // the matched device carries needs-reboot/needs-shutdown
};

class FwupdSession {
 public:
  // Connects to org.freedesktop.fwupd on the system bus ($DBUS_SYSTEM_BUS_ADDRESS). Fails with
  // ErrorCode::Timeout when nothing answers within `timeout`, and with a message that says
  // "fwupd is not running" when the name has no owner and cannot be activated.
  static Expected<std::unique_ptr<FwupdSession>> connect(std::chrono::seconds timeout);
  ~FwupdSession();
  FwupdSession(const FwupdSession&) = delete;
  FwupdSession& operator=(const FwupdSession&) = delete;

  // The device named by `device`: a fwupd device id (or a unique prefix), or a GUID that
  // exactly one device has. NotFound names what was looked for; a GUID shared by several
  // devices is InvalidInput (the plan must say which one).
  Expected<FwupdDeviceInfo> find_device(std::string_view device);

  // The devices the cabinet at `path` applies to (fwupd reads its metadata, nothing is
  // written). Fails with fwupd's message when the file is not a cabinet fwupd accepts.
  Expected<std::vector<FwupdCabinetTarget>> cabinet_targets(const std::string& path);

  // Installs the cabinet on the device; returns when fwupd says it is done. Progress is
  // reported to stderr and sd_notify while it runs. Fails with fwupd's own message.
  Expected<void> install(const std::string& device_id, const std::string& path, bool allow_older,
                         bool allow_reinstall);

  // The result fwupd recorded for the last update of the device (its history database), or
  // nullopt when it has none.
  Expected<std::optional<FwupdDeviceInfo>> results(const std::string& device_id);

  // Whether fwupd refuses payloads without a trusted signature (fwupd.conf OnlyTrusted).
  bool only_trusted();

  // Forgets the recorded result, so a later verify does not read a stale one.
  Expected<void> clear_results(const std::string& device_id);

 private:
  struct Impl;
  explicit FwupdSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bootstate

// The real fwupd daemon with its fake test devices on a private system bus, for one test.
//
// Recipe from ENVIRONMENT.md: a dbus-daemon of type "system" listening on a socket in a temp
// dir, /usr/libexec/fwupd/fwupd with FWUPD_SYSCONFDIR/FWUPD_LOCALSTATEDIR in that dir and
// TestDevices=true, OnlyTrusted=false (the test cabinets are unsigned). Nothing in /etc or
// /var is touched; the state dir is fresh per daemon, so every test starts with the fake
// webcam at 1.2.2 and an empty history. The destructor stops both daemons and removes the dir.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>

namespace bootstate::test {

inline constexpr const char* kFwupdDaemon = "/usr/libexec/fwupd/fwupd";
inline constexpr const char* kTestCabinets = "/usr/share/installed-tests/fwupd";
inline constexpr const char* kWebcamId = "08d460be0f1f9f128413f816022a6439e0078018";
inline constexpr const char* kWebcamGuid = "b585990a-003e-5270-89d5-3705a17f9a43";

class FwupdDaemon {
 public:
  struct Options {
    bool only_trusted = false;
    // The fake device's switches, written to fwupd.conf's [test] section (fwupd 2.x):
    // NeedsReboot=true (staged, done at reboot), WriteSupported=false (the write fails),
    // CompositeChild=true (extra devices), WriteDelay=MS (progress to watch).
    std::map<std::string, std::string> test_plugin;
    bool start_fwupd = true;  // false: only the bus, with nobody owning org.freedesktop.fwupd
  };

  // Why fwupd cannot run here ("" when it can): no daemon binary, no test cabinets, not root.
  static std::string unavailable_reason();

  // Starts the bus (and fwupd) and waits until fwupd owns its name. Throws std::runtime_error
  // with the daemon's log when it does not come up within 20 s.
  explicit FwupdDaemon(Options options);
  FwupdDaemon() : FwupdDaemon(Options{}) {}
  ~FwupdDaemon();
  FwupdDaemon(const FwupdDaemon&) = delete;
  FwupdDaemon& operator=(const FwupdDaemon&) = delete;

  // Stops fwupd and starts it again on the same bus and state dir, with new test-plugin
  // switches: what a reboot looks like to fwupd (the fake device comes back at 1.2.2, the
  // history database stays).
  void restart(std::map<std::string, std::string> test_plugin = {});
  void stop_fwupd();

  // unix:path=… of the private bus; also exported as DBUS_SYSTEM_BUS_ADDRESS while alive.
  const std::string& bus_address() const { return bus_address_; }
  const std::string& dir() const { return dir_; }
  // How long the last start took until fwupd owned its name.
  std::chrono::milliseconds start_time() const { return start_time_; }
  std::string log() const;
  // The daemon's pid, e.g. to SIGSTOP it and see a hung fwupd.
  pid_t fwupd_pid() const { return fwupd_pid_; }

 private:
  void write_config(const std::map<std::string, std::string>& test_plugin);
  void start_fwupd();
  bool fwupd_on_bus() const;

  Options options_;
  std::string dir_;
  std::string bus_address_;
  pid_t bus_pid_ = -1;
  pid_t fwupd_pid_ = -1;
  std::chrono::milliseconds start_time_{0};
};

}  // namespace bootstate::test

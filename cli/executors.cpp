#include "cli/executors.hpp"

#include <unistd.h>

#include <cstdlib>

#include "cli/udev_settle.hpp"
#include "initrd/storage_step.hpp"
#include "stage2/check_runner.hpp"
#include "stage2/command_step.hpp"
#include "stage2/process_runner.hpp"
#include "stage2/step_cgroup.hpp"
#ifdef BOOTSTATE_HAVE_FIRMWARE
#include "firmware/firmware_step.hpp"
#endif

namespace bootstate::cli {

namespace {

// A cgroup per step where systemd delegated bootstate's (the units set Delegate=yes).
PosixProcessRunner::Options runner_options() {
  PosixProcessRunner::Options options;
  options.cgroup_parent = stage2::delegated_cgroup();
  return options;
}

}  // namespace

struct Executors::Parts {
  PosixProcessRunner runner{runner_options()};
  CommandStepExecutor command{runner};
  ProcessCheckRunner checks{runner};
  StorageStepExecutor storage;
  UdevSettlingExecutor settled_storage{storage};
#ifdef BOOTSTATE_HAVE_FIRMWARE
  FirmwareStepExecutor firmware{runner, fwupd_helper_path()};
#endif
};

Executors::Executors() : parts_(std::make_unique<Parts>()) {
  by_kind_[StepKind::Command] = &parts_->command;
  by_kind_[StepKind::Storage] = &parts_->settled_storage;
#ifdef BOOTSTATE_HAVE_FIRMWARE
  by_kind_[StepKind::Firmware] = &parts_->firmware;
#endif
}

Executors::~Executors() = default;

CheckRunner& Executors::checks() const {
  return parts_->checks;
}

std::string fwupd_helper_path() {
  if (const char* configured = std::getenv("BOOTSTATE_FWUPD_HELPER")) return configured;
  char self[4096];
  ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (length > 0) {
    std::string directory(self, static_cast<std::size_t>(length));
    directory = directory.substr(0, directory.rfind('/'));
    for (const char* relative : {"/bootstate-fwupd", "/../firmware/bootstate-fwupd"}) {
      std::string candidate = directory + relative;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return BOOTSTATE_FWUPD_HELPER_INSTALLED;
}

}  // namespace bootstate::cli

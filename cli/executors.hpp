// The real step executors of this build, by kind. Storage needs libfdisk/libblkid (always
// built, loaded on first use: initrd/util_linux.hpp); firmware runs the separate bootstate-fwupd
// helper (built when libfwupd is available), so this binary never links glib.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/check_items.hpp"
#include "core/interfaces.hpp"

namespace bootstate::cli {

class Executors {
 public:
  Executors();
  ~Executors();
  const std::map<StepKind, StepExecutor*>& by_kind() const { return by_kind_; }
  // The plan's checks run like command steps (stage2/check_runner.hpp).
  CheckRunner& checks() const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
  std::map<StepKind, StepExecutor*> by_kind_;
};

// The bootstate-fwupd helper: $BOOTSTATE_FWUPD_HELPER, else next to this executable (a build
// tree), else the installed path.
std::string fwupd_helper_path();

}  // namespace bootstate::cli

// Storage steps on a live system: wait for udev to finish with the disks a step changed.
//
// Closing a disk that was opened for writing makes systemd-udevd re-read its whole partition
// table (BLKRRPART, when nothing on it is mounted, as in initrd-pre-mount): every partition
// device goes away and comes back. If the phase ended during that, systemd would see the root
// device vanish while sysroot.mount starts and stop the mount (seen in the VM tests). So after
// a storage step changed something, bootstate waits, bounded, until udev's event queue is empty.
#pragma once

#include "core/interfaces.hpp"

namespace bootstate::cli {

class UdevSettlingExecutor final : public StepExecutor {
 public:
  explicit UdevSettlingExecutor(StepExecutor& storage) : storage_(storage) {}
  StepOutcome run(const StepContext& context) override;
  CheckResult check(const StepContext& context) override { return storage_.check(context); }
  StepOutcome revert(const StepContext& context) override;
  StepPreview describe(const StepContext& context) override { return storage_.describe(context); }

 private:
  StepExecutor& storage_;
};

// Waits until /run/udev/queue (present while systemd-udevd has events queued) is gone, after
// giving udevd a moment to pick up the inotify event of the close; at most `limit_ms`.
// Returns false when the queue was still busy at the limit (the step's outcome stands).
bool wait_for_udev_queue(int limit_ms);

}  // namespace bootstate::cli

// Test hook for the power-cut tests (tests/integration/test_power_cut.py): with
// BOOTSTATE_TEST_CRASH_AT=N:MODE in the environment, the process kills itself with SIGKILL at
// its Nth state commit — MODE "before" (nothing written), "after" (written and synced) or
// "torn" (cut off halfway: the first half of the bytes the write changes land, in offset order,
// the rest of the slot keeps what it held). Both ways a commit writes (SlotStorage::write and
// write_changed) are cut, each as it runs without the hook. Without the variable it is not
// installed and costs nothing. A SIGKILL is as close to a power cut as a process can get: nothing
// after it runs, and only what was fdatasync'ed is guaranteed on disk.
//
// BOOTSTATE_TEST_CRASH_AT=loader:N:MODE cuts around the Nth boot-loader change instead (an
// entry renamed: marked bad, re-armed, blessed, a generation re-armed by `retry`; or
// LoaderEntryOneShot set): MODE "before" (the state is committed, the entry not renamed) or
// "after" (renamed, nothing after it ran). These are the cuts between a commit and the rename
// it promises (issue #13, "around each boot-loader rename").
//
// BOOTSTATE_TEST_CRASH_AT=idle:MODE cuts around the write of the idle certificate
// (core/store_idle.hpp), with the modes of a commit; commits are not cut then.
#pragma once

#include <memory>

#include "core/interfaces.hpp"

namespace bootstate::cli {

// `inner` when the variable is unset; otherwise a decorator around it.
SlotStorage& maybe_crashing(SlotStorage& inner, std::unique_ptr<SlotStorage>& holder);
BootLoader& maybe_crashing(BootLoader& inner, std::unique_ptr<BootLoader>& holder);

}  // namespace bootstate::cli

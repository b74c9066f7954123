// Test hook for the power-cut tests (tests/integration/test_power_cut.py): with
// BOOTSTATE_TEST_CRASH_AT=N:MODE in the environment, the process kills itself with SIGKILL at
// its Nth state commit — MODE "before" (nothing written), "after" (written and synced) or
// "torn" (only the first half of the slot written). Without the variable it is not installed
// and costs nothing. A SIGKILL is as close to a power cut as a process can get: nothing after
// it runs, and only what was fdatasync'ed is guaranteed on disk.
#pragma once

#include <memory>

#include "core/interfaces.hpp"

namespace bootstate::cli {

// `inner` when the variable is unset; otherwise a decorator around it.
SlotStorage& maybe_crashing(SlotStorage& inner, std::unique_ptr<SlotStorage>& holder);

}  // namespace bootstate::cli

#include "cli/udev_settle.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace bootstate::cli {
namespace {

constexpr int kSettleLimitMs = 15000;
// udevd sees the IN_CLOSE_WRITE of libfdisk's descriptor a little after the close returns; an
// empty queue before that proves nothing.
constexpr auto kPickUpDelay = std::chrono::milliseconds(300);
constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr auto kQuiet = std::chrono::milliseconds(300);

bool changes_a_live_system(const StepContext& context, const StepOutcome& outcome) {
  return outcome.ok && context.root == "/" && ::access("/run/udev/control", F_OK) == 0;
}

void settle_after(const StepContext& context, const StepOutcome& outcome) {
  if (!changes_a_live_system(context, outcome)) return;
  if (!wait_for_udev_queue(kSettleLimitMs)) {
    std::fprintf(stderr, "bootstate: udev was still busy %d s after the storage step\n",
                 kSettleLimitMs / 1000);
  }
}

}  // namespace

bool wait_for_udev_queue(int limit_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(limit_ms);
  std::this_thread::sleep_for(kPickUpDelay);
  // Empty for a while, not once: the uevents of a re-read reach udevd just after its ioctl.
  auto empty_since = Clock::now();
  while (Clock::now() - empty_since < kQuiet) {
    if (Clock::now() >= deadline) return false;
    if (::access("/run/udev/queue", F_OK) == 0) empty_since = Clock::now();
    std::this_thread::sleep_for(kPoll);
  }
  return true;
}

StepOutcome UdevSettlingExecutor::run(const StepContext& context) {
  StepOutcome outcome = storage_.run(context);
  settle_after(context, outcome);
  return outcome;
}

StepOutcome UdevSettlingExecutor::revert(const StepContext& context) {
  StepOutcome outcome = storage_.revert(context);
  settle_after(context, outcome);
  return outcome;
}

}  // namespace bootstate::cli

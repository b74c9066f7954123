// A program that uses bootstate_firmware_step and nothing else, so test_no_glib can check with
// ldd that the library's link interface pulls no glib (the `bootstate` binary links it).
#include "firmware/firmware_step.hpp"

namespace {
class NoRunner : public bootstate::ProcessRunner {
 public:
  bootstate::ProcessResult run(const bootstate::ProcessSpec&) override { return {}; }
};
}  // namespace

int main() {
  NoRunner runner;
  bootstate::FirmwareStepExecutor executor(runner, bootstate::kDefaultFwupdHelper);
  bootstate::StepContext context;
  return executor.revert(context).ok ? 1 : 0;
}

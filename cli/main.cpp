// bootstate: the NixOS state-transition layer. See docs/DESIGN.md.
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/options.hpp"

namespace bootstate::cli {

// `status` and `preview` of a large state allocate and free buffers of a megabyte or more (the
// plan, the slot, parsed documents, the output). By default glibc maps each of those separately
// and unmaps it when freed, so the next one faults in fresh pages again: a third of `status
// --json` with 1,000 migrations was system time (docs/PERFORMANCE.md "(b)"). Keep freed memory
// in the heap for reuse instead; the process is short-lived.
void keep_freed_memory_for_reuse() {
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 128 << 20);
  ::mallopt(M_TOP_PAD, 1 << 20);
}

}  // namespace bootstate::cli

int main(int argc, char** argv) {
  using namespace bootstate::cli;
  std::vector<std::string> arguments(argv + 1, argv + argc);
  auto options = parse_options(arguments);
  if (!options) return report_error(options.error());
  Machine machine(std::move(*options));
  // `run` does it once it knows the boot is not idle (cmd_run.cpp).
  if (machine.options().command != Command::Run) keep_freed_memory_for_reuse();
  try {
    switch (machine.options().command) {
      case Command::Run:
        return run_command(machine);
      case Command::Status:
        return status_command(machine);
      case Command::Preview:
        return preview_command(machine);
      case Command::History:
        return history_command(machine);
      case Command::Log:
        return log_command(machine);
      case Command::Metrics:
        return metrics_command(machine);
      case Command::Accept:
      case Command::Decline:
      case Command::Retry:
        return decision_command(machine);
      case Command::Cancel:
        return cancel_command(machine);
      case Command::Choose:
        return choose_command(machine);
      case Command::Version:
        std::printf("bootstate %s\n", BOOTSTATE_VERSION);
        return kExitOk;
      case Command::Help: {
        const Options& given = machine.options();
        const CommandSpec* topic = find_command(given.argument);
        std::string text = given.json         ? command_table_json()
                           : topic != nullptr ? command_help(topic->command)
                                              : usage();
        std::fputs(text.c_str(), stdout);
        return kExitOk;
      }
    }
  } catch (const std::exception& exception) {
    // Library exceptions (allocation, a std::string too long) end here as an error, never a crash.
    return report_error(bootstate::Error{bootstate::ErrorCode::Failed, exception.what()});
  }
  return kExitInvalid;
}

// The command line of docs/DESIGN.md "Command line":
//   bootstate [--root DIR] [--esp PATH] [--plan PATH] [--json] [--no-reboot] COMMAND [ARGS]
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/plan.hpp"

namespace bootstate::cli {

enum class Command { Run, Status, Preview, History, Accept, Decline, Retry, Help, Version };

struct Options {
  std::string root;        // --root DIR: empty = "/" (no re-rooting)
  std::string esp;         // --esp PATH (re-rooted under --root), empty = discover
  std::string boot;        // --boot PATH: XBOOTLDR ($BOOT) mount, re-rooted; empty = discover
  std::string plan;        // --plan PATH (re-rooted under --root), empty = default for the phase
  bool json = false;       // --json
  bool no_reboot = false;  // --no-reboot (implied by --root)
  Command command = Command::Help;
  std::optional<Phase> phase;  // run --phase PHASE
  std::string argument;        // preview PLAN|TOPLEVEL, accept/decline/retry ID
};

// InvalidInput with a message that names the bad argument.
Expected<Options> parse_options(const std::vector<std::string>& arguments);

std::string usage();

}  // namespace bootstate::cli

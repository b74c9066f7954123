// The command line of docs/DESIGN.md "Command line":
//   bootstate [--root DIR] [--esp PATH] [--boot PATH] [--plan PATH] [--json] [--no-reboot]
//             COMMAND [ARGS]
// Which commands and options exist is cli/command_table.cpp; this is what one invocation said.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_table.hpp"
#include "core/error.hpp"
#include "core/plan.hpp"

namespace bootstate::cli {

struct Options {
  std::string root;        // --root DIR: empty = "/" (no re-rooting)
  std::string esp;         // --esp PATH (re-rooted under --root), empty = discover
  std::string boot;        // --boot PATH: XBOOTLDR ($BOOT) mount, re-rooted; empty = discover
  std::string plan;        // --plan PATH (re-rooted under --root), empty = default for the phase
  bool json = false;       // --json
  bool no_reboot = false;  // --no-reboot (implied by --root)
  bool no_pager = false;   // --no-pager: accepted; bootstate never pages
  Command command = Command::Help;
  std::optional<Phase> phase;  // run --phase PHASE
  std::size_t jobs = 4;        // run --jobs N: steps of independent migrations at once
  std::string argument;        // preview PLAN|TOPLEVEL, accept/decline/retry ID, log M[/S],
                               // help COMMAND
  std::uint64_t attempt = 0;   // log --attempt N; 0 = the current attempt
  bool follow = false;         // log --follow
  std::string resolution;      // choose ITEM RESOLUTION
  bool clear = false;          // choose ITEM --clear
  std::string output;          // metrics --output FILE (not re-rooted: it is the caller's file)
};

// InvalidInput with a message that names the bad argument. `COMMAND --help` (or `-h`) parses
// as `help COMMAND`, whatever else the line says, so the help of a command is always reachable.
Expected<Options> parse_options(const std::vector<std::string>& arguments);

// The global usage, and the help of one command (its synopsis, text and options).
std::string usage();
std::string command_help(Command command);
// Every command and option as JSON (`bootstate --json help`), for tools and tests.
std::string command_table_json();

}  // namespace bootstate::cli

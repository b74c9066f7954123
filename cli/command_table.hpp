// The one table of bootstate's commands and options. The parser (options.cpp) accepts exactly
// what is here, `--help` and `bootstate COMMAND --help` are written from it (help.cpp), and
// `bootstate --json help` prints it, so the man page, the shell completions and their tests can
// be checked against what the binary really accepts (tests/cli/test_help.py).
#pragma once

#include <span>
#include <string_view>

namespace bootstate::cli {

enum class Command {
  Run,
  Status,
  Preview,
  History,
  Log,
  Metrics,
  Accept,
  Decline,
  Retry,
  Cancel,
  Choose,
  Help,
  Version
};

struct OptionSpec {
  std::string_view name;        // "--phase"
  std::string_view short_name;  // "-f", or empty
  std::string_view value;       // "PHASE" for an option with a value, empty for a flag
  std::string_view help;        // one line
};

struct CommandSpec {
  Command command;
  std::string_view name;       // "run"
  std::string_view arguments;  // positional arguments for the synopsis ("[PLAN|TOPLEVEL]")
  std::string_view summary;    // one line, for the global usage
  std::string_view details;    // paragraphs for `bootstate COMMAND --help` ('\n'-separated)
  std::span<const std::string_view> options;  // names of its own options (not the global ones)
};

// Options every command accepts, and the options that belong to one command or a few.
std::span<const OptionSpec> global_options();
std::span<const OptionSpec> command_options();
std::span<const CommandSpec> commands();

// nullptr when unknown. `name` may be a long ("--attempt") or short ("-f") name.
const OptionSpec* find_option(std::string_view name);
const CommandSpec* find_command(std::string_view name);
const CommandSpec& spec_of(Command command);
bool command_takes(const CommandSpec& command, std::string_view option_name);

// The phases, in order, as `run --phase` accepts them.
inline constexpr std::string_view kPhaseNames[] = {"initrd-pre-mount", "pre-switch-root",
                                                   "post-activation"};

}  // namespace bootstate::cli

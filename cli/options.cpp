#include "cli/options.hpp"

namespace bootstate::cli {
namespace {

std::optional<Command> parse_command(std::string_view word) {
  if (word == "run") return Command::Run;
  if (word == "status") return Command::Status;
  if (word == "preview") return Command::Preview;
  if (word == "history") return Command::History;
  if (word == "accept") return Command::Accept;
  if (word == "decline") return Command::Decline;
  if (word == "retry") return Command::Retry;
  if (word == "help") return Command::Help;
  if (word == "version") return Command::Version;
  return std::nullopt;
}

Error usage_error(std::string message) {
  return Error{ErrorCode::InvalidInput, message + " (see `bootstate --help`)"};
}

}  // namespace

std::string usage() {
  return "Usage: bootstate [--root DIR] [--esp PATH] [--plan PATH] [--json] [--no-reboot] "
         "COMMAND\n"
         "\n"
         "Commands:\n"
         "  run --phase PHASE   advance the state machine (initrd-pre-mount, pre-switch-root,\n"
         "                      post-activation); used by the bootstate-*.service units\n"
         "  status              what is booted, the attempt, every migration and step, what next\n"
         "  preview [PLAN|TOPLEVEL]\n"
         "                      what booting that generation will do; exit 1 if something blocks\n"
         "  history             past attempts\n"
         "  accept ID           let an optional migration run\n"
         "  decline ID          do not run a recommended/optional migration (or keep the effect\n"
         "                      of a stale one that cannot be undone)\n"
         "  retry ID            run a failed migration again\n"
         "\n"
         "Options:\n"
         "  --root DIR   every absolute path bootstate uses is taken below DIR (implies\n"
         "               --no-reboot): run against a directory tree\n"
         "  --esp PATH   the mounted ESP holding bootstate's state (default: discovered)\n"
         "  --boot PATH  the mounted XBOOTLDR partition holding boot entries, when they are\n"
         "               not on the ESP (default: /boot when it is such a separate mount)\n"
         "  --plan PATH  the plan to use instead of the booted generation's\n"
         "  --json       machine-readable output (status, preview, history)\n"
         "  --no-reboot  exit 4 instead of rebooting when a reboot is needed\n"
         "\n"
         "Exit status: 0 ok, 1 phase failed (fallback arranged) or preview blocked,\n"
         "2 usage or invalid input (nothing changed), 4 reboot required.\n";
}

Expected<Options> parse_options(const std::vector<std::string>& arguments) {
  Options options;
  bool have_command = false;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    auto value = [&](std::string_view name) -> Expected<std::string> {
      if (i + 1 >= arguments.size() || arguments[i + 1].empty()) {
        return usage_error(fmt::format("{} needs a value", name));
      }
      return arguments[++i];
    };
    if (argument == "--root" || argument == "--esp" || argument == "--boot" ||
        argument == "--plan" || argument == "--phase") {
      auto given = value(argument);
      if (!given) return given.error();
      if (argument == "--root") options.root = *given;
      if (argument == "--esp") options.esp = *given;
      if (argument == "--boot") options.boot = *given;
      if (argument == "--plan") options.plan = *given;
      if (argument == "--phase") {
        auto phase = parse_phase(*given);
        if (!phase) {
          return usage_error(
              fmt::format("--phase: unknown phase \"{}\" (initrd-pre-mount, "
                          "pre-switch-root or post-activation)",
                          *given));
        }
        options.phase = *phase;
      }
    } else if (argument == "--json") {
      options.json = true;
    } else if (argument == "--no-reboot") {
      options.no_reboot = true;
    } else if (argument == "--help" || argument == "-h") {
      options.command = Command::Help;
      return options;
    } else if (argument == "--version") {
      options.command = Command::Version;
      return options;
    } else if (!argument.empty() && argument[0] == '-') {
      return usage_error(fmt::format("unknown option \"{}\"", argument));
    } else if (!have_command) {
      auto command = parse_command(argument);
      if (!command) return usage_error(fmt::format("unknown command \"{}\"", argument));
      options.command = *command;
      have_command = true;
    } else {
      positional.push_back(argument);
    }
  }
  if (!have_command) return usage_error("no command given");
  if (!options.root.empty()) {
    if (options.root[0] != '/') return usage_error("--root must be an absolute path");
    while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
    if (options.root == "/") options.root.clear();
    options.no_reboot = true;
  }
  switch (options.command) {
    case Command::Run:
      if (!options.phase) return usage_error("run needs --phase PHASE");
      if (!positional.empty()) return usage_error("run takes no arguments");
      break;
    case Command::Preview:
      if (positional.size() > 1) return usage_error("preview takes at most one PLAN or TOPLEVEL");
      if (!positional.empty()) options.argument = positional[0];
      break;
    case Command::Accept:
    case Command::Decline:
    case Command::Retry:
      if (positional.size() != 1) return usage_error("this command needs one migration ID");
      options.argument = positional[0];
      break;
    default:
      if (!positional.empty()) {
        return usage_error(fmt::format("unexpected argument \"{}\"", positional[0]));
      }
  }
  if (options.phase && options.command != Command::Run) {
    return usage_error("--phase is only for run");
  }
  return options;
}

}  // namespace bootstate::cli

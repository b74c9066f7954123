#include "cli/command_table.hpp"

namespace bootstate::cli {
namespace {

constexpr OptionSpec kGlobalOptions[] = {
    {"--root", "", "DIR", "use every absolute path below DIR (implies --no-reboot)"},
    {"--esp", "", "PATH", "the mounted ESP with bootstate's state (default: /boot, /efi)"},
    {"--boot", "", "PATH",
     "the mounted XBOOTLDR partition with the boot entries (default: /boot when separate)"},
    {"--plan", "", "PATH", "the plan to use instead of the booted generation's"},
    {"--json", "", "", "machine-readable output (status, preview, history, help)"},
    {"--no-reboot", "", "", "exit 4 instead of rebooting when a reboot is needed"},
    {"--no-pager", "", "", "accepted as in systemctl; bootstate never starts a pager"},
    {"--help", "-h", "", "show this help, or the help of COMMAND"},
    {"--version", "", "", "show bootstate's version"},
};

constexpr OptionSpec kCommandOptions[] = {
    {"--phase", "", "PHASE", "initrd-pre-mount, pre-switch-root or post-activation"},
    {"--jobs", "-j", "N",
     "run at most N steps of independent migrations at once (1 to 64, default 4)"},
    {"--attempt", "", "N", "the attempt number (default: the current attempt)"},
    {"--follow", "-f", "", "keep printing the log while the step is running"},
    {"--output", "-o", "FILE", "replace FILE atomically (a temporary file renamed over it)"},
    {"--clear", "", "", "withdraw the choice made for ITEM"},
};

constexpr std::string_view kRunOptions[] = {"--phase", "--jobs"};
constexpr std::string_view kLogOptions[] = {"--attempt", "--follow"};
constexpr std::string_view kMetricsOptions[] = {"--output"};
constexpr std::string_view kChooseOptions[] = {"--clear"};

constexpr CommandSpec kCommands[] = {
    {Command::Run, "run", "--phase PHASE", "advance the state machine (used by the units)",
     "Runs the work of one boot phase: undoes stale migrations, runs the pending steps of this\n"
     "phase, records every step before and after it runs, and completes the attempt in\n"
     "post-activation. The bootstate-*.service units run it; an operator rarely does.\n"
     "Command steps of independent migrations (neither `after` the other) run at once, at most\n"
     "--jobs N; each start and end is still its own commit.\n"
     "Exit status: 0 ok, 1 the phase failed (fallback arranged), 2 invalid input, 4 a reboot\n"
     "is needed to continue (with --no-reboot; otherwise bootstate asks systemd to reboot).",
     kRunOptions},
    {Command::Status,
     "status",
     "",
     "what is booted, the attempt, every migration and step",
     "Shows the booted generation and boot entry, the entry's boot counting, the last good\n"
     "generation, the current attempt, every migration and step with its state, and what\n"
     "happens next. Colours only on a terminal; NO_COLOR turns them off.\n"
     "With --json: the stable keys of docs/schema/status.schema.json.",
     {}},
    {Command::Preview,
     "preview",
     "[PLAN|TOPLEVEL]",
     "what booting a generation will do",
     "Shows what booting that generation (default: the booted one) will do, boot by boot and\n"
     "phase by phase: migrations to apply and undo, reboots, irreversible steps, blockers.\n"
     "Exit status 0 when nothing blocks, 1 when something does.\n"
     "With --json: the keys of docs/schema/preview.schema.json.",
     {}},
    {Command::History,
     "history",
     "",
     "past attempts",
     "Lists the past attempts, oldest first, and the current one last: number, state,\n"
     "generation, start and end, boots, and why it ended. --json prints them as an array.",
     {}},
    {Command::Log, "log", "[MIGRATION[/STEP]]", "the output of a step",
     "Prints the output of a step from its log file (/var/lib/bootstate/logs; steps of the\n"
     "initrd-pre-mount phase log to the journal only, under SYSLOG_IDENTIFIER\n"
     "bootstate-MIGRATION-STEP). Without an argument: the steps of the attempt that have run,\n"
     "the newest failure first. MIGRATION alone: each of its steps. --follow keeps printing\n"
     "while the step is running.",
     kLogOptions},
    {Command::Metrics, "metrics", "", "node-exporter textfile metrics for fleets",
     "Writes the state in Prometheus' text format for node-exporter's textfile collector:\n"
     "the attempt's state, boots without progress, tries left, failed steps, open error items\n"
     "and the last good generation (as a label). With --output FILE the file is replaced\n"
     "atomically, so the collector never reads half of it.",
     kMetricsOptions},
    {Command::Accept,
     "accept",
     "ID",
     "let an optional migration run",
     "Records the operator's acceptance of optional migration ID: it runs at its phase.",
     {}},
    {Command::Decline,
     "decline",
     "ID",
     "do not run a recommended or optional migration",
     "Records that migration ID must not run. On a stale migration that cannot be undone it\n"
     "keeps the migration's effect and stops the blocking. Required migrations and migrations\n"
     "that have started cannot be declined.",
     {}},
    {Command::Retry,
     "retry",
     "ID",
     "run a failed migration (or check) again",
     "Makes failed migration ID (forward or undo) run again at its phase, and reopens a failed\n"
     "attempt of the booted plan (or of --plan). ID may name a check: the next boot runs the\n"
     "checks again. After a fallback from generation G, `retry --plan G ID` gives G's boot\n"
     "entries their tries back; G's next boot starts a new attempt.",
     {}},
    {Command::Choose, "choose", "ITEM RESOLUTION | ITEM --clear",
     "choose how a check's item is resolved",
     "Records durably that item ITEM (an id `preview` or `status` lists, or CHECK/ITEM) is\n"
     "resolved by RESOLUTION: it runs as migration CHECK.RESOLUTION in the next attempt of the\n"
     "item's generation, with everything a migration has (backup, undo, power-cut safety).\n"
     "With --plan PLAN: for a generation not booted yet (its checks run to find the item).\n"
     "--clear withdraws the choice. An unknown item or a resolution the item or its plan does\n"
     "not offer: exit 2, nothing changed.",
     kChooseOptions},
    {Command::Cancel,
     "cancel",
     "",
     "abandon the attempt in progress",
     "Abandons the attempt in progress (\"cancelled by the operator\"): nothing more of it runs.\n"
     "What it applied is undone by the next boot of the last good generation, which bootstate\n"
     "arranges to boot next; in a live switch it is undone at once (then switch back).\n"
     "Exit status 0 when cancelled (and, in a live switch, undone), 1 when an undo failed.",
     {}},
    {Command::Help,
     "help",
     "[COMMAND]",
     "show the help of bootstate or of COMMAND",
     "Shows the global usage, or the help of COMMAND. With --json: every command and option\n"
     "this binary accepts, for tools.",
     {}},
    {Command::Version,
     "version",
     "",
     "show bootstate's version",
     "Prints \"bootstate VERSION\".",
     {}},
};

}  // namespace

std::span<const OptionSpec> global_options() {
  return kGlobalOptions;
}

std::span<const OptionSpec> command_options() {
  return kCommandOptions;
}

std::span<const CommandSpec> commands() {
  return kCommands;
}

const OptionSpec* find_option(std::string_view name) {
  for (auto table : {global_options(), command_options()}) {
    for (const OptionSpec& option : table) {
      if (option.name == name || (!option.short_name.empty() && option.short_name == name)) {
        return &option;
      }
    }
  }
  return nullptr;
}

const CommandSpec* find_command(std::string_view name) {
  for (const CommandSpec& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

const CommandSpec& spec_of(Command command) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.command == command) return spec;
  }
  return kCommands[0];  // unreachable: every Command has a row (tests/cli checks each name)
}

bool command_takes(const CommandSpec& command, std::string_view option_name) {
  for (std::string_view name : command.options) {
    if (name == option_name) return true;
  }
  return false;
}

}  // namespace bootstate::cli

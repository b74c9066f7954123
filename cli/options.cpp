#include "cli/options.hpp"

#include <charconv>

namespace bootstate::cli {
namespace {

// More steps at once than this gains nothing on a machine booting, and each is a thread.
constexpr std::size_t kMaxJobs = 64;

Error usage_error(const std::string& message) {
  return Error{ErrorCode::InvalidInput, message + " (see `bootstate --help`)"};
}

// The commands that take `option`, for "--attempt is only for log".
std::string commands_taking(std::string_view option) {
  std::string names;
  for (const CommandSpec& command : commands()) {
    if (!command_takes(command, option)) continue;
    if (!names.empty()) names += ", ";
    names += command.name;
  }
  return names;
}

bool is_global(const OptionSpec& option) {
  for (const OptionSpec& global : global_options()) {
    if (&global == &option) return true;
  }
  return false;
}

// What one option says, stored into `options`; errors name the option.
Expected<void> apply_option(Options& options, std::string_view name, const std::string& value) {
  if (name == "--root") options.root = value;
  if (name == "--esp") options.esp = value;
  if (name == "--boot") options.boot = value;
  if (name == "--plan") options.plan = value;
  if (name == "--json") options.json = true;
  if (name == "--no-reboot") options.no_reboot = true;
  if (name == "--no-pager") options.no_pager = true;
  if (name == "--follow") options.follow = true;
  if (name == "--output") options.output = value;
  if (name == "--clear") options.clear = true;
  if (name == "--phase") {
    auto phase = parse_phase(value);
    if (!phase) {
      return usage_error(fmt::format(
          "--phase: unknown phase \"{}\" (initrd-pre-mount, pre-switch-root or post-activation)",
          value));
    }
    options.phase = *phase;
  }
  if (name == "--jobs") {
    std::size_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc{} || end != value.data() + value.size() || number < 1 ||
        number > kMaxJobs) {
      return usage_error(fmt::format(
          "--jobs: \"{}\" is not a number of steps to run at once (1 to {})", value, kMaxJobs));
    }
    options.jobs = number;
  }
  if (name == "--attempt") {
    std::uint64_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc{} || end != value.data() + value.size() || number == 0) {
      return usage_error(
          fmt::format("--attempt: \"{}\" is not an attempt number (1, 2, …)", value));
    }
    options.attempt = number;
  }
  return {};
}

Expected<void> check_arguments(Options& options, const std::vector<std::string>& positional) {
  switch (options.command) {
    case Command::Run:
      if (!options.phase) return usage_error("run needs --phase PHASE");
      break;
    case Command::Preview:
    case Command::Log:
    case Command::Help:
      if (positional.size() > 1) {
        return usage_error(fmt::format("{} takes at most one {}", spec_of(options.command).name,
                                       spec_of(options.command).arguments));
      }
      if (!positional.empty()) options.argument = positional[0];
      if (options.command == Command::Help && !options.argument.empty() &&
          find_command(options.argument) == nullptr) {
        return usage_error(fmt::format("help: unknown command \"{}\"", options.argument));
      }
      return {};
    case Command::Accept:
    case Command::Decline:
    case Command::Retry:
      if (positional.size() != 1) {
        return usage_error(fmt::format("{} needs one migration ID", spec_of(options.command).name));
      }
      options.argument = positional[0];
      return {};
    case Command::Choose:
      if (options.clear ? positional.size() != 1 : positional.size() != 2) {
        return usage_error(options.clear ? "choose --clear needs one ITEM"
                                         : "choose needs ITEM and RESOLUTION (or ITEM --clear)");
      }
      options.argument = positional[0];
      if (!options.clear) options.resolution = positional[1];
      return {};
    default:
      break;
  }
  if (!positional.empty()) {
    return usage_error(
        fmt::format("{} takes no argument \"{}\"", spec_of(options.command).name, positional[0]));
  }
  return {};
}

}  // namespace

Expected<Options> parse_options(const std::vector<std::string>& arguments) {
  Options options;
  const CommandSpec* command = nullptr;
  std::vector<std::string> positional;
  std::vector<std::string_view> own_options;  // command options given, checked once the
                                              // command is known (it may come after them)
  bool help = false;
  bool version = false;
  std::optional<Error> first_error;
  auto fail = [&](Error error) {
    if (!first_error) first_error = std::move(error);
  };
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument.size() < 2 || argument[0] != '-') {
      if (command != nullptr) {
        positional.push_back(argument);
      } else if ((command = find_command(argument)) == nullptr) {
        return usage_error(fmt::format("unknown command \"{}\"", argument));
      }
      continue;
    }
    // --name=value is the same as --name value.
    std::string_view name = argument;
    std::optional<std::string> inline_value;
    if (auto equals = argument.find('=');
        argument.starts_with("--") && equals != std::string::npos) {
      name = std::string_view(argument).substr(0, equals);
      inline_value = argument.substr(equals + 1);
    }
    const OptionSpec* option = find_option(name);
    if (option == nullptr) {
      fail(usage_error(fmt::format("unknown option \"{}\"", name)));
      continue;
    }
    std::string value;
    if (!option->value.empty()) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < arguments.size()) {
        value = arguments[++i];
      }
      if (value.empty()) {
        fail(usage_error(fmt::format("{} needs a value ({})", option->name, option->value)));
        continue;
      }
    } else if (inline_value) {
      fail(usage_error(fmt::format("{} takes no value", option->name)));
      continue;
    }
    if (option->name == "--help") help = true;
    if (option->name == "--version") version = true;
    if (!is_global(*option)) own_options.push_back(option->name);
    if (auto applied = apply_option(options, option->name, value); !applied) {
      fail(applied.error());
    }
  }
  if (help) {
    options.command = Command::Help;
    if (command != nullptr) {
      // `help log --help` is log's help; `help --help` is help's own.
      bool topic_given = command->command == Command::Help && !positional.empty();
      options.argument = topic_given ? positional[0] : std::string(command->name);
    }
    if (!options.argument.empty() && find_command(options.argument) == nullptr) {
      return usage_error(fmt::format("help: unknown command \"{}\"", options.argument));
    }
    return options;
  }
  if (first_error) return *first_error;
  if (version && command == nullptr) {
    options.command = Command::Version;
    return options;
  }
  if (command == nullptr) return usage_error("no command given");
  options.command = command->command;
  for (std::string_view name : own_options) {
    if (!command_takes(*command, name)) {
      return usage_error(fmt::format("{} is only for {}", name, commands_taking(name)));
    }
  }
  if (!options.root.empty()) {
    if (options.root[0] != '/') return usage_error("--root must be an absolute path");
    while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
    if (options.root == "/") options.root.clear();
    options.no_reboot = true;
  }
  if (auto checked = check_arguments(options, positional); !checked) return checked.error();
  return options;
}

}  // namespace bootstate::cli

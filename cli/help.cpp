// `bootstate --help`, `bootstate COMMAND --help` and `bootstate --json help`, all written from
// the command table, so that none of them can name an option the parser does not accept.
#include <fmt/format.h>

#include "cli/json_writer.hpp"
#include "cli/options.hpp"

namespace bootstate::cli {
namespace {

std::string option_label(const OptionSpec& option) {
  std::string label;
  if (!option.short_name.empty()) label = std::string(option.short_name) + ", ";
  label += option.name;
  if (!option.value.empty()) label += " " + std::string(option.value);
  return label;
}

void add_option_lines(std::string& out, const OptionSpec& option) {
  out += fmt::format("  {:<18} {}\n", option_label(option), option.help);
}

std::string synopsis(const CommandSpec& command) {
  std::string line = fmt::format("bootstate [OPTIONS] {}", command.name);
  if (!command.arguments.empty()) line += " " + std::string(command.arguments);
  for (std::string_view name : command.options) {
    const OptionSpec* option = find_option(name);
    if (option == nullptr || command.arguments.find(name) != std::string_view::npos) continue;
    line += fmt::format(" [{}{}{}]", option->name, option->value.empty() ? "" : " ", option->value);
  }
  return line;
}

}  // namespace

std::string usage() {
  std::string out = "Usage: bootstate [OPTIONS] COMMAND [ARGS]\n\nCommands:\n";
  for (const CommandSpec& command : commands()) {
    std::string head = std::string(command.name);
    if (!command.arguments.empty()) head += " " + std::string(command.arguments);
    if (head.size() > 22) {
      out += fmt::format("  {}\n  {:<22} {}\n", head, "", command.summary);
    } else {
      out += fmt::format("  {:<22} {}\n", head, command.summary);
    }
  }
  out += "\nOptions:\n";
  for (const OptionSpec& option : global_options()) add_option_lines(out, option);
  out += "\nOptions of one command (see `bootstate COMMAND --help`):\n";
  for (const OptionSpec& option : command_options()) add_option_lines(out, option);
  out +=
      "\nExit status: 0 ok, 1 phase failed (fallback arranged) or preview blocked,\n"
      "2 usage or invalid input (nothing changed), 4 reboot required.\n"
      "See bootstate(8) for the whole manual.\n";
  return out;
}

std::string command_help(Command which) {
  const CommandSpec& command = spec_of(which);
  std::string out = "Usage: " + synopsis(command) + "\n\n";
  std::string summary(command.summary);
  if (!summary.empty()) summary[0] = static_cast<char>(std::toupper(summary[0]));
  out += summary + ".\n\n" + std::string(command.details) + "\n";
  if (!command.options.empty()) {
    out += "\nOptions:\n";
    for (std::string_view name : command.options) {
      if (const OptionSpec* option = find_option(name)) add_option_lines(out, *option);
    }
  }
  out += "\nGlobal options:\n";
  for (const OptionSpec& option : global_options()) add_option_lines(out, option);
  return out;
}

std::string command_table_json() {
  JsonWriter json;
  auto write_option = [&json](const OptionSpec& option) {
    json.begin_object();
    json.field("name", option.name);
    json.field_or_null("short", option.short_name);
    json.field_or_null("value", option.value);
    json.field("help", option.help);
    json.end_object();
  };
  json.begin_object();
  json.key("global_options");
  json.begin_array();
  for (const OptionSpec& option : global_options()) write_option(option);
  json.end_array();
  json.key("commands");
  json.begin_array();
  for (const CommandSpec& command : commands()) {
    json.begin_object();
    json.field("name", command.name);
    json.field("arguments", command.arguments);
    json.field("summary", command.summary);
    json.key("options");
    json.begin_array();
    for (std::string_view name : command.options) {
      if (const OptionSpec* option = find_option(name)) write_option(*option);
    }
    json.end_array();
    json.end_object();
  }
  json.end_array();
  json.key("phases");
  json.begin_array();
  for (std::string_view phase : kPhaseNames) json.string(phase);
  json.end_array();
  json.end_object();
  return json.text();
}

}  // namespace bootstate::cli

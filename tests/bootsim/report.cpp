// How a simulated boot is reported: one line for people, one JSON object for machines (the VM
// tests compare the JSON sequence with what real systemd-boot did under qemu).
#include <fmt/format.h>

#include "tests/bootsim/machine.hpp"

namespace bootsim {
namespace {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

std::string json_optional(const std::optional<std::string>& text) {
  return text ? json_string(*text) : "null";
}

std::string json_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + json_string(items[i]);
  return out + "]";
}

}  // namespace

std::string summary_line(const BootRecord& record) {
  const FirmwareBoot& fw = record.firmware;
  std::string line = fmt::format("boot {}: {}", record.number, fw.file_before);
  if (fw.file_after != fw.file_before) line += " → " + fw.file_after;
  line +=
      fmt::format(" ({}{})", to_string(fw.chosen_by),
                  fw.one_shot && fw.chosen_by != ChosenBy::OneShot ? ", one-shot unmatched" : "");
  line += " " + (fw.generation.empty() ? std::string("<no init=>") : fw.generation) + ":";
  for (const auto& phase : record.phases) {
    line += fmt::format(" {} {},", to_string(phase.phase), phase.exit);
  }
  if (!record.phases.empty()) line.pop_back();
  switch (record.outcome) {
    case BootOutcome::Complete:
      line += " → boot complete";
      break;
    case BootOutcome::RebootRequested:
      line += " → reboot requested";
      break;
    case BootOutcome::PhaseFailed:
      line += " → " + record.outcome_detail + " failed";
      break;
    case BootOutcome::PowerCut:
    case BootOutcome::Panic:
      line += " → " + record.outcome_detail;
      break;
  }
  if (record.bless) {
    line += ", bless: " + std::string(to_string(*record.bless));
  } else {
    line += fw.boot_count_path ? ", not blessed" : ", no boot counting";
  }
  return line;
}

std::string json_record(const BootRecord& record) {
  const FirmwareBoot& fw = record.firmware;
  std::string phases = "[";
  for (std::size_t i = 0; i < record.phases.size(); ++i) {
    phases += fmt::format("{}{{\"phase\":{},\"exit\":{}}}", i ? "," : "",
                          json_string(to_string(record.phases[i].phase)), record.phases[i].exit);
  }
  phases += "]";
  return fmt::format(
      "{{\"boot\":{},\"boot_id\":{},\"menu\":{},\"chosen_by\":{},\"one_shot\":{},"
      "\"entry_selected\":{},\"file_before\":{},\"file_after\":{},\"boot_count_path\":{},"
      "\"generation\":{},\"phases\":{},\"outcome\":{},\"outcome_detail\":{},\"bless\":{},"
      "\"entries_after\":{}}}",
      record.number, json_string(fw.boot_id), json_strings(fw.menu),
      json_string(to_string(fw.chosen_by)), json_optional(fw.one_shot), json_string(fw.selected_id),
      json_string(fw.file_before), json_string(fw.file_after), json_optional(fw.boot_count_path),
      json_string(fw.generation), phases, json_string(to_string(record.outcome)),
      json_string(record.outcome_detail),
      record.bless ? json_string(to_string(*record.bless)) : std::string("null"),
      json_strings(record.entries_after));
}

}  // namespace bootsim

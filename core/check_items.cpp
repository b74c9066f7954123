#include "core/check_items.hpp"

#include <rapidjson/document.h>

#include <algorithm>

#include "core/json_fields.hpp"

namespace bootstate {
namespace {

Expected<CheckItem> parse_item_line(const Check& check, std::string_view line,
                                    std::string_view declared_by) {
  rapidjson::Document document;
  BOOTSTATE_TRY(parse_json_document(line, "item", document));
  BOOTSTATE_TRY(check_json_strings(document, "item"));
  auto object = FieldReader::open(document, "item");
  if (!object) return object.error();
  BOOTSTATE_TRY(object->reject_unknown({"id", "severity", "message", "resolutions", "default"}));
  CheckItem item;
  item.check = check.id;
  auto id = object->required_string("id");
  if (!id) return id.error();
  if (!valid_id(*id)) {
    return object->error_at(
        "id", fmt::format("invalid id {:?} (must match [a-z0-9][a-z0-9._-]{{0,63}})", *id));
  }
  item.id = std::move(*id);
  auto severity_text = object->required_string("severity");
  if (!severity_text) return severity_text.error();
  auto severity = parse_severity(*severity_text);
  if (!severity) {
    return object->error_at(
        "severity",
        fmt::format("unknown severity {:?} (error, warning or recommendation)", *severity_text));
  }
  item.severity = *severity;
  auto message = object->required_string("message");
  if (!message) return message.error();
  if (message->empty()) return object->error_at("message", "must not be empty");
  if (message->size() > kMaxItemMessageBytes) {
    return object->error_at("message", fmt::format("longer than {} bytes", kMaxItemMessageBytes));
  }
  item.message = std::move(*message);
  auto resolutions = object->string_array("resolutions");
  if (!resolutions) return resolutions.error();
  for (std::size_t i = 0; i < resolutions->size(); ++i) {
    const std::string& resolution = (*resolutions)[i];
    const std::string path = json_index_path("item.resolutions", i);
    if (check.find(resolution) == nullptr) {
      return make_error(
          ErrorCode::InvalidInput, "{}: {:?} is not a resolution {} declares", path, resolution,
          declared_by.empty() ? fmt::format("check \"{}\"", check.id) : std::string(declared_by));
    }
    if (std::find(resolutions->begin(), resolutions->begin() + static_cast<std::ptrdiff_t>(i),
                  resolution) != resolutions->begin() + static_cast<std::ptrdiff_t>(i)) {
      return make_error(ErrorCode::InvalidInput, "{}: {:?} is named twice", path, resolution);
    }
  }
  item.resolutions = std::move(*resolutions);
  auto default_resolution = object->optional_string("default");
  if (!default_resolution) return default_resolution.error();
  if (!default_resolution->empty() && std::find(item.resolutions.begin(), item.resolutions.end(),
                                                *default_resolution) == item.resolutions.end()) {
    return object->error_at(
        "default", fmt::format("{:?} is not one of the item's resolutions", *default_resolution));
  }
  item.default_resolution = std::move(*default_resolution);
  return item;
}

CheckItem failure_item(const Check& check, std::string why) {
  CheckItem item;
  item.id = std::string(kCheckFailedItem);
  item.check = check.id;
  item.severity = Severity::Error;
  item.message = fmt::format("check \"{}\" failed: {}", check.id, why);
  if (item.message.size() > kMaxItemMessageBytes) item.message.resize(kMaxItemMessageBytes);
  return item;
}

}  // namespace

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::Error:
      return "error";
    case Severity::Warning:
      return "warning";
    case Severity::Recommendation:
      return "recommendation";
  }
  return "error";
}

std::optional<Severity> parse_severity(std::string_view text) {
  for (Severity severity : {Severity::Error, Severity::Warning, Severity::Recommendation}) {
    if (to_string(severity) == text) return severity;
  }
  return std::nullopt;
}

Expected<std::vector<CheckItem>> parse_item_lines(const Check& check, std::string_view text,
                                                  std::string_view declared_by) {
  std::vector<CheckItem> items;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    if (std::all_of(line.begin(), line.end(),
                    [](char c) { return c == ' ' || c == '\t' || c == '\r'; })) {
      continue;
    }
    auto item = parse_item_line(check, line, declared_by);
    if (!item) return item.error().with_context(fmt::format("line {}", line_number));
    for (const CheckItem& earlier : items) {
      if (earlier.id == item->id) {
        return make_error(ErrorCode::InvalidInput, "line {}: item id \"{}\" is reported twice",
                          line_number, item->id);
      }
    }
    if (items.size() == kMaxItemsPerCheck) {
      return make_error(ErrorCode::InvalidInput, "more than {} items", kMaxItemsPerCheck);
    }
    items.push_back(std::move(*item));
  }
  return items;
}

std::vector<CheckItem> items_of_run(const Check& check, const ProcessResult& result) {
  if (!result.succeeded()) {
    std::string why = result.message.empty() ? "it did not run" : result.message;
    return {failure_item(check, std::move(why))};
  }
  if (result.stdout_text.size() > kMaxCheckOutputBytes) {
    return {failure_item(
        check, fmt::format("it printed more than {} bytes of items", kMaxCheckOutputBytes))};
  }
  auto items = parse_item_lines(check, result.stdout_text);
  if (!items) return {failure_item(check, "unreadable output: " + items.error().message)};
  return std::move(*items);
}

std::vector<CheckItem> run_checks(const Plan& plan, std::optional<Phase> phase, CheckRunner& runner,
                                  const CheckRunContext& context) {
  std::vector<CheckItem> items;
  for (const Check& check : plan.checks) {
    if (phase && check.phase != *phase) continue;
    CheckRunContext own = context;
    own.phase = phase ? *phase : check.phase;
    auto found = items_of_run(check, runner.run(check, own));
    for (CheckItem& item : found) items.push_back(std::move(item));
  }
  return items;
}

bool blocks(const CheckItem& item, bool chosen) {
  return item.severity == Severity::Error && !chosen;
}

}  // namespace bootstate

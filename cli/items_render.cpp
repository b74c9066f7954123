#include "cli/items_render.hpp"

#include "core/engine.hpp"

namespace bootstate::cli {
namespace {

// The argument that names the item for `choose`: its id, or CHECK/ID when another check
// reports the same id.
std::string item_argument(const ItemView& view, const std::vector<ItemView>& all) {
  for (const ItemView& other : all) {
    if (other.item.id == view.item.id && other.item.check != view.item.check) {
      return view.item.check + "/" + view.item.id;
    }
  }
  return view.item.id;
}

// A running step's items have the source MIGRATION/STEP (core/step_items.hpp), a check's its id.
bool from_step(const ItemRecord& item) {
  return item.check.find('/') != std::string::npos;
}

// What the operator can do about an item that offers no resolution: fix the cause, then retry
// the step, or the check (retry_check: its generation's next boot runs the checks again). The
// generation is named: after a fallback the booted plan is another one.
std::string without_resolution(const ItemRecord& item) {
  const std::string retried =
      from_step(item) ? item.check.substr(0, item.check.find('/')) : item.check;
  return fmt::format("fix the cause, then `bootstate retry {}{}`",
                     item.generation.empty() ? "" : "--plan " + item.generation + " ", retried);
}

}  // namespace

std::string items_text(const std::vector<ItemView>& items, std::string_view plan_generation) {
  std::string out;
  struct Group {
    const char* severity;
    const char* title;
  };
  for (Group group : {Group{"error", "Errors (an open one blocks the generation)"},
                      Group{"warning", "Warnings"}, Group{"recommendation", "Recommendations"}}) {
    bool first = true;
    for (const ItemView& view : items) {
      const bool in_group =
          view.item.severity == group.severity ||
          (group.severity == std::string_view("error") && !parse_severity(view.item.severity));
      if (!in_group) continue;
      if (first) out += fmt::format("{}:\n", group.title);
      first = false;
      out +=
          fmt::format("  {} ({}, {} {}): {}\n", view.item.id, to_string(view.state),
                      from_step(view.item) ? "step" : "check", view.item.check, view.item.message);
      if (!view.chosen.empty()) out += fmt::format("      chosen: {}\n", view.chosen);
      if (view.item.resolutions.empty()) {
        out += fmt::format("      no resolution is offered: {}\n", without_resolution(view.item));
      }
      const std::string argument = item_argument(view, items);
      for (const ItemResolutionRecord& resolution : view.item.resolutions) {
        out += fmt::format("      {}{}{}\n        {}\n", resolution.id,
                           resolution.id == view.item.default_resolution ? " (default)" : "",
                           resolution.description.empty() ? "" : ": " + resolution.description,
                           choose_command(argument, resolution.id, plan_generation));
      }
    }
  }
  return out;
}

void write_items_json(JsonWriter& json, const std::vector<ItemView>& items) {
  json.begin_array();
  for (const ItemView& view : items) {
    json.begin_object();
    json.field("id", view.item.id);
    json.field("check", view.item.check);
    json.field("severity", view.item.severity);
    json.field("message", view.item.message);
    json.key("resolutions");
    json.begin_array();
    for (const ItemResolutionRecord& resolution : view.item.resolutions) {
      json.begin_object();
      json.field("id", resolution.id);
      json.field("description", resolution.description);
      json.end_object();
    }
    json.end_array();
    json.field_or_null("default", view.item.default_resolution);
    json.field_or_null("chosen", view.chosen);
    json.field("state", std::string(to_string(view.state)));
    json.field("generation", view.item.generation);
    json.end_object();
  }
  json.end_array();
}

}  // namespace bootstate::cli

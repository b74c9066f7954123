// `bootstate status` for a person (laid out like `bootctl status`) and as JSON with the stable
// keys of docs/DESIGN.md.
#include "cli/items_render.hpp"
#include "cli/json_writer.hpp"
#include "cli/state_view.hpp"
#include "cli/status_model.hpp"

namespace bootstate::cli {
namespace {

std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}

// ANSI colours, only when status_command found a terminal and no NO_COLOR.
struct Paint {
  bool on = false;
  std::string operator()(std::string_view text, std::string_view code) const {
    if (!on || text.empty() || code.empty()) return std::string(text);
    return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
  }
};
constexpr std::string_view kGreen = "32";
constexpr std::string_view kRed = "31";
constexpr std::string_view kYellow = "33";
constexpr std::string_view kBold = "1";

std::string_view colour_of(std::string_view word) {
  if (word == "applied" || word == "done" || word == "undone" || word == "complete" ||
      word == "blessed") {
    return kGreen;
  }
  if (word == "failed" || word == "bad" || word == "abandoned") return kRed;
  if (word == "running" || word == "in-progress" || word == "on-trial") return kYellow;
  return "";
}

// The booted entry's counting in one vocabulary (entry_state()), whichever way systemd-boot
// shows it: an entry blessed in this boot (LoaderBootCountPath names the counted file, which
// is renamed now) and one blessed earlier (no counter, so no LoaderBootCountPath) both read
// "blessed". Only the explanation after the word differs.
std::string counting_text(const StatusModel& model, const Paint& paint) {
  std::string_view state = entry_state(model);
  std::string word = paint(state, colour_of(state));
  if (state == "blessed") return word + ": marked good, no counter left";
  if (state == "on-trial") {
    return fmt::format("{}: {} tries left, {} done; blessed when this boot completes", word,
                       model.tries_left, model.tries_done);
  }
  if (state == "bad") {
    return word + ": no tries left; systemd-boot prefers any other entry on the next boot";
  }
  return word + (model.counting_why.empty() ? "" : ": " + model.counting_why);
}

const char* mark_of(std::string_view state) {
  if (state == "applied" || state == "done" || state == "undone") return "✓";
  if (state == "failed") return "✗";
  if (state == "running") return "▶";
  if (state == "declined" || state == "skipped") return "-";
  return "○";
}

std::string marked(std::string_view state, const Paint& paint) {
  return paint(mark_of(state), colour_of(state));
}

void render_steps(std::string& out, const std::vector<StepRow>& steps, std::string_view label,
                  const Paint& paint) {
  for (const StepRow& step : steps) {
    out += fmt::format("      {} {}{:<16} {:<17} {}", marked(step.state, paint), label, step.id,
                       to_string(step.phase),
                       paint(fmt::format("{:<8}", step.state), colour_of(step.state)));
    if (step.attempts > 0) out += fmt::format(" attempts {}", step.attempts);
    if (!step.message.empty() && step.state != "pending") out += "  " + step.message;
    if (step.awaiting_reboot) out += "  (awaiting reboot)";
    out += "\n";
  }
}

void write_steps(JsonWriter& json, std::string_view key, const std::vector<StepRow>& steps) {
  json.key(key);
  json.begin_array();
  for (const StepRow& step : steps) {
    json.begin_object();
    json.field("id", step.id);
    json.field("phase", std::string(to_string(step.phase)));
    json.field("kind", step.kind);
    json.field("state", step.state);
    json.field("attempts", static_cast<std::int64_t>(step.attempts));
    json.key("exit_status");
    if (step.exit_status >= 0) {
      json.number(step.exit_status);
    } else {
      json.null();
    }
    json.field("message", step.message);
    json.field_or_null("started", step.started_usec ? format_time(step.started_usec) : "");
    json.field_or_null("finished", step.finished_usec ? format_time(step.finished_usec) : "");
    json.field("awaiting_reboot", step.awaiting_reboot);
    json.end_object();
  }
  json.end_array();
}

// What backup restores moved aside instead of destroying (DESIGN.md "Nothing lost").
void render_displaced(std::string& out, const MigrationRow& row) {
  if (row.displaced_total == 0) return;
  out += fmt::format("      restoring its backup displaced {} item(s) written since; kept at:\n",
                     row.displaced_total);
  for (const std::string& path : row.displaced) out += "        " + path + "\n";
  if (row.displaced_total > row.displaced.size()) {
    out += fmt::format("        … and {} more\n", row.displaced_total - row.displaced.size());
  }
}

void write_displaced(JsonWriter& json, const MigrationRow& row) {
  json.field("displaced", row.displaced);
  json.field("displaced_total", static_cast<std::int64_t>(row.displaced_total));
}

}  // namespace

std::string_view entry_state(const StatusModel& model) {
  if (model.counting == BootCounting::Active) {
    if (model.tries_left < 0) return "blessed";
    return model.tries_left == 0 ? "bad" : "on-trial";
  }
  if (model.counting == BootCounting::Off && model.entry_without_counter) return "blessed";
  return "not-counted";
}

std::string render_status_text(const StatusModel& model, bool colour) {
  const Paint paint{colour};
  std::string out;
  out += fmt::format("     Booted: {}\n", or_dash(model.booted_generation));
  if (!model.current_generation.empty() && model.current_generation != model.booted_generation) {
    out += fmt::format("    Current: {} (live switch: not booted yet)\n", model.current_generation);
  }
  out += fmt::format("      Entry: {}\n", or_dash(model.booted_entry));
  out += fmt::format("   Counting: {}\n", counting_text(model, paint));
  out += fmt::format("  Last good: {}\n", or_dash(model.last_good));
  out += fmt::format("        ESP: {}\n", or_dash(model.esp));
  if (model.attempt) {
    const Attempt& attempt = *model.attempt;
    std::string_view state = to_string(attempt.state);
    out += fmt::format("    Attempt: #{} {} for {}\n", attempt.number,
                       paint(state, colour_of(state)), attempt.generation);
    out += fmt::format("             {} boot(s), {} without progress, started {}\n",
                       attempt.boot_ids.size(), attempt.boots_without_progress,
                       format_time(attempt.started_usec));
    if (!attempt.reason.empty()) out += fmt::format("     Reason: {}\n", attempt.reason);
  } else {
    out += "    Attempt: none yet\n";
  }
  out += "\n" + paint("Migrations:", kBold) + "\n";
  if (model.migrations.empty()) out += "  (none)\n";
  for (const MigrationRow& row : model.migrations) {
    out += fmt::format("  {} {} ({}{}): {}", marked(row.state, paint), paint(row.id, kBold),
                       row.policy, row.in_plan ? "" : ", not in this plan",
                       paint(row.state, colour_of(row.state)));
    if (row.kept) out += " — kept";
    if (!row.readiness.empty() && row.readiness != row.state && row.in_plan) {
      out += " — ";
      out += row.readiness;
    }
    out += "\n";
    if (!row.description.empty()) out += "      " + row.description + "\n";
    if (!row.detail.empty()) out += "      " + row.detail + "\n";
    if (row.definition_changed) {
      out +=
          "      its definition changed since it ran: this generation is blocked until the new "
          "definition gets a new id\n";
    }
    render_steps(out, row.steps, "", paint);
    render_steps(out, row.undo_steps, "undo ", paint);
    render_displaced(out, row);
  }
  if (!model.items.empty()) {
    out += "\n" + paint("Items:", kBold) + "\n" + items_text(model.items);
  }
  out += "\n" + paint("Next:", kBold) + "\n";
  for (const std::string& line : model.next) out += "  " + line + "\n";
  for (const std::string& warning : model.warnings) {
    out += paint("Warning:", kRed) + " " + warning + "\n";
  }
  return out;
}

void render_status_json(const StatusModel& model, JsonWriter& json) {
  json.begin_object();
  json.key("booted");
  json.begin_object();
  json.field_or_null("generation", model.booted_generation);
  json.field_or_null("entry", model.booted_entry);
  json.field("counting", std::string(to_string(model.counting)));
  json.field("tries_left", static_cast<std::int64_t>(model.tries_left));
  json.field("tries_done", static_cast<std::int64_t>(model.tries_done));
  json.field("counting_detail", model.counting_why);
  json.field("entry_state", entry_state(model));
  json.end_object();
  // The generation /run/current-system names: another one than booted after a live switch.
  json.key("current");
  json.begin_object();
  json.field_or_null("generation", model.current_generation);
  json.end_object();
  json.field_or_null("last_good", model.last_good);
  json.field_or_null("last_good_entry", model.last_good_entry);
  json.key("attempt");
  if (model.attempt) {
    const Attempt& attempt = *model.attempt;
    json.begin_object();
    json.field("number", static_cast<std::int64_t>(attempt.number));
    json.field("generation", attempt.generation);
    json.field("state", std::string(to_string(attempt.state)));
    json.field("reason", attempt.reason);
    json.field("boots", static_cast<std::int64_t>(attempt.boot_ids.size()));
    json.field("boots_without_progress", static_cast<std::int64_t>(attempt.boots_without_progress));
    json.field("plan_digest", attempt.plan_digest);
    json.field_or_null("started", format_time(attempt.started_usec));
    json.field_or_null("finished", attempt.finished_usec ? format_time(attempt.finished_usec) : "");
    json.end_object();
  } else {
    json.null();
  }
  json.key("migrations");
  json.begin_array();
  for (const MigrationRow& row : model.migrations) {
    json.begin_object();
    json.field("id", row.id);
    json.field("description", row.description);
    json.field("policy", row.policy);
    json.field("state", row.state);
    json.field("readiness", row.readiness);
    json.field("detail", row.detail);
    json.field("in_plan", row.in_plan);
    json.field("kept", row.kept);
    json.field("definition_changed", row.definition_changed);
    write_steps(json, "steps", row.steps);
    write_steps(json, "undo_steps", row.undo_steps);
    write_displaced(json, row);
    json.end_object();
  }
  json.end_array();
  json.key("items");
  write_items_json(json, model.items);
  json.field("next", model.next);
  json.field("warnings", model.warnings);
  json.end_object();
}

}  // namespace bootstate::cli

// The commands that only read: status, preview, history.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/commands.hpp"
#include "cli/executors.hpp"
#include "cli/items_render.hpp"
#include "cli/json_writer.hpp"
#include "cli/state_view.hpp"
#include "cli/status_model.hpp"
#include "core/preview.hpp"

namespace bootstate::cli {
namespace {

// Colours only for a person at a terminal, and never when NO_COLOR is set to a non-empty value
// (no-color.org).
bool colour_wanted() {
  const char* no_colour = std::getenv("NO_COLOR");
  return ::isatty(STDOUT_FILENO) == 1 && (no_colour == nullptr || *no_colour == '\0') &&
         std::getenv("TERM") != nullptr && std::string_view(std::getenv("TERM")) != "dumb";
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// What these commands printed reached stdout: `status > file` on a full disk must not exit 0
// with half a document, or none (coreutils' close_stdout does the same for every tool).
// Nothing else was changed: exit 2, as every error that changed nothing.
int output_written(int code) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return code;
  return report_error(make_error(ErrorCode::Io, "writing the output: {}", std::strerror(errno)));
}

std::string preview_text(const PreviewReport& report) {
  std::string out = fmt::format("Preview of {}\n", report.generation);
  if (report.actions.empty()) out += "  nothing to do\n";
  int boot = 0;
  for (const PreviewAction& action : report.actions) {
    if (action.boot != boot) {
      boot = action.boot;
      out += fmt::format("Boot {}:\n", boot);
    }
    out += fmt::format("  [{}] {} {}{}{}{}{}\n", to_string(action.phase), action.action,
                       action.migration, action.step.empty() ? "" : "/", action.step,
                       action.irreversible ? "  (irreversible)" : "",
                       action.reboot_after ? "  (reboot after)" : "");
    for (const std::string& line : action.detail.lines) out += "      " + line + "\n";
    if (action.detail.needs_reboot) out += "      needs a reboot to complete\n";
  }
  if (report.boots > 1) out += fmt::format("Reboots needed: {}\n", report.boots - 1);
  if (report.initrd_work) {
    out +=
        "Initrd phases have work: boot into this generation (nixos-rebuild boot), a live "
        "switch cannot do it\n";
  }
  out += items_text(report.items, report.generation);
  for (const std::string& note : report.notes) out += "Note: " + note + "\n";
  for (const std::string& blocker : report.blockers) out += "Blocked: " + blocker + "\n";
  return out;
}

std::string preview_json(const PreviewReport& report) {
  JsonWriter json;
  json.begin_object();
  json.field("generation", report.generation);
  json.field("boots", static_cast<std::int64_t>(report.boots));
  json.field("reboots", static_cast<std::int64_t>(report.boots > 1 ? report.boots - 1 : 0));
  json.field("initrd_work", report.initrd_work);
  json.field("blocked", !report.blockers.empty());
  json.field("blockers", report.blockers);
  json.field("notes", report.notes);
  json.key("items");
  write_items_json(json, report.items);
  json.key("actions");
  json.begin_array();
  for (const PreviewAction& action : report.actions) {
    json.begin_object();
    json.field("boot", static_cast<std::int64_t>(action.boot));
    json.field("phase", std::string(to_string(action.phase)));
    json.field("migration", action.migration);
    json.field_or_null("step", action.step);
    json.field("action", action.action);
    json.field("irreversible", action.irreversible);
    json.field("reboot_after", action.reboot_after);
    json.field("needs_reboot", action.detail.needs_reboot);
    json.field("lines", action.detail.lines);
    json.field_or_null("blocker", action.detail.blocker);
    json.key("detail");
    if (action.detail.detail_json.empty()) {
      json.null();
    } else {
      json.raw(action.detail.detail_json, rapidjson::kObjectType);  // kind-specific data
    }
    json.end_object();
  }
  json.end_array();
  json.end_object();
  return json.text();
}

// What the store looked like (a corrupt slot and what `run` will do about it): on stderr, so
// that --json output stays one document.
void print_warnings(const StateSnapshot& snapshot) {
  for (const std::string& warning : snapshot.warnings) {
    std::fprintf(stderr, "Warning: %s\n", warning.c_str());
  }
}

void write_attempt(JsonWriter& json, const Attempt& attempt) {
  json.begin_object();
  json.field("number", static_cast<std::int64_t>(attempt.number));
  json.field("generation", attempt.generation);
  json.field("state", std::string(to_string(attempt.state)));
  json.field("reason", attempt.reason);
  json.field("boots", static_cast<std::int64_t>(attempt.boot_ids.size()));
  json.field_or_null("started", format_time(attempt.started_usec));
  json.field_or_null("finished", attempt.finished_usec ? format_time(attempt.finished_usec) : "");
  json.end_object();
}

}  // namespace

int status_command(const Machine& machine) {
  auto model = gather_status(machine);
  if (!model) return report_error(model.error());
  if (!machine.options().json) {
    print(render_status_text(*model, colour_wanted()));
    return output_written(kExitOk);
  }
  JsonWriter json(stdout);
  render_status_json(*model, json);
  json.finish();
  return output_written(kExitOk);
}

int preview_command(const Machine& machine) {
  const Options& options = machine.options();
  Expected<Plan> plan = make_error(ErrorCode::InvalidInput, "no plan");
  if (!options.argument.empty()) {
    plan = machine.plan_at(options.argument);
  } else {
    auto facts = machine.boot_facts();
    if (!facts) return report_error(facts.error());
    plan = machine.booted_plan(std::nullopt, *facts);
  }
  if (!plan) return report_error(plan.error());
  auto snapshot = read_state(machine);
  if (!snapshot) return report_error(snapshot.error());
  print_warnings(*snapshot);
  Executors executors;
  // Every check of the target plan, against the machine as it is now (nothing is recorded:
  // preview only reads).
  std::vector<CheckItem> items;
  if (!plan->checks.empty()) {
    CheckRunContext context;
    context.generation = plan->generation;
    context.root = machine.root();
    items = run_checks(*plan, std::nullopt, executors.checks(), context);
  }
  PreviewReport report =
      preview_plan(snapshot->state, *plan, executors.by_kind(), machine.root(), items);
  print(options.json ? preview_json(report) : preview_text(report));
  return output_written(report.blockers.empty() ? kExitOk : kExitFailed);
}

int history_command(const Machine& machine) {
  auto snapshot = read_state(machine);
  if (!snapshot) return report_error(snapshot.error());
  print_warnings(*snapshot);
  std::vector<Attempt> attempts = snapshot->state.history;
  if (snapshot->state.attempt) attempts.push_back(*snapshot->state.attempt);
  if (machine.options().json) {
    JsonWriter json;
    json.begin_array();
    for (const Attempt& attempt : attempts) write_attempt(json, attempt);
    json.end_array();
    print(json.text());
    return output_written(kExitOk);
  }
  if (attempts.empty()) print("No attempts yet.\n");
  for (const Attempt& attempt : attempts) {
    print(fmt::format("#{:<4} {:<11} {}  {} → {}  {} boot(s)\n", attempt.number,
                      to_string(attempt.state), attempt.generation,
                      format_time(attempt.started_usec), format_time(attempt.finished_usec),
                      attempt.boot_ids.size()));
    if (!attempt.reason.empty()) print("      " + attempt.reason + "\n");
  }
  return output_written(kExitOk);
}

}  // namespace bootstate::cli

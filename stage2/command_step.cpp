#include "stage2/command_step.hpp"

#include "stage2/account.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check_items.hpp"
#include "core/read_file.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>
#include <utility>

namespace bootstate {

namespace {

// Sets KEY=VALUE, replacing an earlier value of KEY in place so each key appears once.
void set_variable(std::vector<std::pair<std::string, std::string>>& variables, std::string_view key,
                  std::string value) {
  for (auto& [name, old_value] : variables) {
    if (name == key) {
      old_value = std::move(value);
      return;
    }
  }
  variables.emplace_back(std::string(key), std::move(value));
}

std::string joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& word : argv) {
    if (!text.empty()) text += ' ';
    text += word;
  }
  return text;
}

StepOutcome failure(std::string message, int exit_status = -1) {
  StepOutcome outcome;
  outcome.ok = false;
  outcome.exit_status = exit_status;
  outcome.message = std::move(message);
  return outcome;
}

StepOutcome missing_step() {
  return failure("no command step in context");
}

bool has_step(const StepContext& context) {
  return context.step != nullptr && context.migration != nullptr;
}

std::string items_path(const StepContext& context) {
  return context.work_dir.empty() ? std::string() : context.work_dir + "/items";
}

// What the step wrote to $BOOTSTATE_ITEMS, into `outcome`. The work directory may belong to the
// step's user: the file is read without following a link, only if it is a regular file, and at
// most one byte more than a report may have (so an oversized one is recognised as such).
void read_reported_items(const StepContext& context, StepOutcome& outcome) {
  const std::string path = items_path(context);
  if (path.empty()) return;
  auto text = read_untrusted_file(path, kMaxCheckOutputBytes + 1);
  if (text) {
    outcome.reported_items = std::move(*text);
  } else if (text.error().code != ErrorCode::NotFound) {
    outcome.reported_items_error = text.error().message;
  }
}

// A report left by an earlier run of the step (before a power cut or a retry) is not this run's.
Expected<void> remove_old_report(const StepContext& context) {
  const std::string path = items_path(context);
  if (path.empty() || ::unlink(path.c_str()) == 0 || errno == ENOENT) return {};
  return make_error(ErrorCode::Io, "cannot remove the old $BOOTSTATE_ITEMS file {}: {}", path,
                    std::strerror(errno));
}

}  // namespace

std::vector<std::string> step_environment(const StepContext& context) {
  std::vector<std::pair<std::string, std::string>> variables;
  set_variable(variables, "PATH", kStepPath);
  set_variable(variables, "LANG", "C.UTF-8");
  set_variable(variables, "HOME", context.work_dir);
  if (context.step != nullptr) {
    for (const auto& [key, value] : context.step->command.environment) {
      // Reserved: the command relies on bootstate's values, which follow below.
      if (key.starts_with("BOOTSTATE_")) continue;
      set_variable(variables, key, value);
    }
  }
  set_variable(variables, "BOOTSTATE_PHASE", std::string(to_string(context.phase)));
  set_variable(variables, "BOOTSTATE_MIGRATION",
               context.migration != nullptr ? context.migration->id : "");
  set_variable(variables, "BOOTSTATE_STEP", context.step != nullptr ? context.step->id : "");
  set_variable(variables, "BOOTSTATE_ATTEMPT", std::to_string(context.attempt));
  set_variable(variables, "BOOTSTATE_GENERATION", context.generation);
  set_variable(variables, "BOOTSTATE_ROOT", context.root);
  set_variable(variables, "BOOTSTATE_WORK_DIR", context.work_dir);
  // Where the step may write its percentage ("45" or "45 copying tables"): bootstate shows it
  // on the console while the step runs (cli/progress.hpp).
  set_variable(variables, "BOOTSTATE_PROGRESS",
               context.work_dir.empty() ? "" : context.work_dir + "/progress");
  // Where the step may report items, JSON lines like a check's (core/step_items.hpp).
  set_variable(variables, "BOOTSTATE_ITEMS", items_path(context));

  std::vector<std::string> environment;
  environment.reserve(variables.size());
  for (auto& [key, value] : variables) environment.push_back(fmt::format("{}={}", key, value));
  return environment;
}

ProcessSpec CommandStepExecutor::spec_for(const StepContext& context,
                                          const std::vector<std::string>& argv) const {
  ProcessSpec spec;
  spec.argv = argv;
  spec.environment = step_environment(context);
  spec.work_dir = context.work_dir;
  spec.timeout_seconds = context.step->timeout_seconds;
  spec.log_path = context.log_path;
  spec.journal_identifier = fmt::format("bootstate-{}-{}", context.migration->id, context.step->id);
  return spec;
}

namespace {

// The step's account applied to its spec: the identity, HOME/USER/LOGNAME from the passwd entry
// (the step's `environment` still wins), and the work directory handed over.
Expected<void> run_as_account(const StepContext& context, ProcessSpec& spec) {
  auto account = resolve_step_account(context.step->command, context.phase);
  if (!account) return account.error();
  if (!*account) return {};
  const StepAccount& who = **account;
  set_account_environment(who, spec.environment, context.step->command.environment);
  if (!spec.work_dir.empty()) BOOTSTATE_TRY(hand_work_dir_to(spec.work_dir, who.identity));
  spec.identity = who.identity;
  return {};
}

}  // namespace

StepOutcome CommandStepExecutor::run(const StepContext& context) {
  if (!has_step(context)) return missing_step();
  ProcessSpec spec = spec_for(context, context.step->command.argv);
  if (auto as_account = run_as_account(context, spec); !as_account) {
    return failure(as_account.error().message);
  }
  if (auto removed = remove_old_report(context); !removed) return failure(removed.error().message);
  ProcessResult result = runner_.run(spec);
  StepOutcome outcome = failure(std::move(result.message), result.exit_status);
  outcome.ok = result.succeeded();
  read_reported_items(context, outcome);
  return outcome;
}

CheckResult CommandStepExecutor::check(const StepContext& context) {
  if (!has_step(context) || context.step->command.check.empty()) return CheckResult::Unknown;
  ProcessSpec spec = spec_for(context, context.step->command.check);
  // A check that cannot run as the step's user cannot say the step is applied.
  if (!run_as_account(context, spec)) return CheckResult::NotApplied;
  ProcessResult result = runner_.run(spec);
  return result.succeeded() ? CheckResult::Applied : CheckResult::NotApplied;
}

StepOutcome CommandStepExecutor::interrupted_report(const StepContext& context) {
  // Every run removes the report before it starts, so one found now is the interrupted run's.
  StepOutcome outcome;
  read_reported_items(context, outcome);
  return outcome;
}

StepOutcome CommandStepExecutor::revert(const StepContext& /*context*/) {
  return failure("command steps do not revert themselves");
}

StepPreview CommandStepExecutor::describe(const StepContext& context) {
  StepPreview preview;
  if (context.step == nullptr) {
    preview.blocker = "no command step in context";
    return preview;
  }
  const Step& step = *context.step;
  preview.lines.push_back(step.preview.empty() ? "runs " + joined(step.command.argv)
                                               : step.preview);
  if (!step.command.check.empty()) preview.lines.push_back("check: " + joined(step.command.check));

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  auto write_argv = [&writer](const char* key, const std::vector<std::string>& argv) {
    writer.Key(key);
    writer.StartArray();
    for (const auto& word : argv) {
      writer.String(word.data(), static_cast<rapidjson::SizeType>(word.size()));
    }
    writer.EndArray();
  };
  writer.StartObject();
  write_argv("command", step.command.argv);
  if (!step.command.check.empty()) write_argv("check", step.command.check);
  writer.Key("timeout");
  writer.Uint(step.timeout_seconds);
  writer.EndObject();
  preview.detail_json = buffer.GetString();
  return preview;
}

}  // namespace bootstate

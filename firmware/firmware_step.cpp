#include "firmware/firmware_step.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <utility>

namespace bootstate {

#ifndef BOOTSTATE_FWUPD_HELPER_PATH
#define BOOTSTATE_FWUPD_HELPER_PATH "/usr/libexec/bootstate/bootstate-fwupd"
#endif
const char* const kDefaultFwupdHelper = BOOTSTATE_FWUPD_HELPER_PATH;

namespace {

constexpr std::string_view kNeverUndone = "firmware is machine state and is never undone";

// The helper gets a clean environment plus what it needs to find the buses: the system bus
// address (set in tests and containers) and systemd's notify socket (progress as STATUS=),
// and the step's progress file, which bootstate's console heartbeat reads (as a command step's
// $BOOTSTATE_PROGRESS; cli/progress.hpp).
std::vector<std::string> helper_environment(const std::string& work_dir) {
  std::vector<std::string> environment{"PATH=/run/current-system/sw/bin:/usr/bin:/bin"};
  if (!work_dir.empty()) environment.push_back("BOOTSTATE_PROGRESS=" + work_dir + "/progress");
  for (const char* name : {"DBUS_SYSTEM_BUS_ADDRESS", "NOTIFY_SOCKET", "LANG"}) {
    if (const char* value = std::getenv(name)) {
      environment.push_back(std::string(name) + "=" + value);
    }
  }
  return environment;
}

std::string preview_json(const HelperReply& reply) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"device_id", &reply.device_id},
        {"device_name", &reply.device_name},
        {"current_version", &reply.current_version},
        {"target_version", &reply.target_version}}) {
    writer.Key(key);
    writer.String(value->c_str(), static_cast<rapidjson::SizeType>(value->size()));
  }
  writer.Key("matches");
  writer.Bool(reply.matches);
  writer.Key("needs_reboot");
  writer.Bool(reply.needs_reboot);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

FirmwareStepExecutor::FirmwareStepExecutor(ProcessRunner& runner, std::string helper_path)
    : runner_(runner), helper_path_(std::move(helper_path)) {}

FirmwareSpec FirmwareStepExecutor::spec_for(const StepContext& context) const {
  FirmwareSpec spec = context.step->firmware;
  // The cabinet is a store path of the generation: under --root it lives in that tree, as
  // every other absolute path does. fwupd gets the file from us (an fd), not by name.
  if (!context.root.empty() && context.root != "/" && !spec.cabinet.empty()) {
    spec.cabinet = context.root + spec.cabinet;
  }
  return spec;
}

Expected<HelperReply> FirmwareStepExecutor::call(const StepContext& context, HelperCommand command,
                                                 std::uint32_t timeout_seconds) {
  ProcessSpec process;
  process.argv = helper_argv(helper_path_, command, spec_for(context), timeout_seconds);
  process.environment = helper_environment(context.work_dir);
  process.work_dir = context.work_dir.empty() ? "/" : context.work_dir;
  process.timeout_seconds = timeout_seconds + kRunnerGraceSeconds;
  process.log_path = context.log_path;
  process.capture_stdout = true;
  process.journal_identifier = "bootstate-fwupd";
  const ProcessResult result = runner_.run(process);
  const std::string what = fmt::format("bootstate-fwupd {}", to_string(command));
  if (!result.started) return make_error(ErrorCode::Failed, "{}: {}", what, result.message);
  if (result.timed_out || result.signal != 0) {
    // Killed before it could answer: fwupd may still be writing, so this is never success.
    return make_error(result.timed_out ? ErrorCode::Timeout : ErrorCode::Failed,
                      "{}: {} (fwupd may still be working on the device)", what, result.message);
  }
  auto reply = parse_reply(result.stdout_text);
  if (!reply) {
    return reply.error().with_context(fmt::format("{} ({})", what, result.message));
  }
  if (exit_status_for(*reply) != result.exit_status) {
    return make_error(ErrorCode::Failed, "{}: replied \"{}\" but exited with status {}: {}", what,
                      to_string(reply->result), result.exit_status, reply->message);
  }
  return reply;
}

StepOutcome FirmwareStepExecutor::run(const StepContext& context) {
  const bool verifying = context.record != nullptr && context.record->awaiting_reboot;
  const HelperCommand command = verifying ? HelperCommand::Verify : HelperCommand::Install;
  auto reply = call(context, command, context.step->timeout_seconds);
  StepOutcome outcome;
  if (!reply) {
    outcome.message = reply.error().message;
    return outcome;
  }
  outcome.exit_status = exit_status_for(*reply);
  outcome.message = reply->message;
  switch (reply->result) {
    case HelperResult::Done:
      outcome.ok = true;
      break;
    case HelperResult::AwaitingReboot:
      // A verify never stages anything; if it said so, the reboot did not finish the update.
      outcome.ok = !verifying;
      outcome.awaiting_reboot = !verifying;
      if (verifying) outcome.message = "still awaiting a reboot after one: " + reply->message;
      break;
    case HelperResult::Described:
    case HelperResult::Failed:
      break;
  }
  return outcome;
}

CheckResult FirmwareStepExecutor::check(const StepContext& context) {
  auto reply = call(context, HelperCommand::Describe, kQueryTimeoutSeconds);
  if (!reply || reply->result != HelperResult::Described || reply->device_id.empty()) {
    return CheckResult::Unknown;
  }
  return reply->matches ? CheckResult::Applied : CheckResult::NotApplied;
}

StepOutcome FirmwareStepExecutor::revert(const StepContext& /*context*/) {
  StepOutcome outcome;
  outcome.message = std::string(kNeverUndone);
  return outcome;
}

StepPreview FirmwareStepExecutor::describe(const StepContext& context) {
  StepPreview preview;
  preview.irreversible = true;
  const FirmwareSpec& spec = context.step->firmware;
  auto reply = call(context, HelperCommand::Describe, kQueryTimeoutSeconds);
  if (!reply) {
    preview.blocker = reply.error().message;
    preview.lines.push_back(
        fmt::format("firmware {} for device {}: cannot ask fwupd", spec.version, spec.device));
    return preview;
  }
  if (reply->result == HelperResult::Failed) {
    preview.blocker = reply->message;
  } else {
    preview.blocker = reply->blocker;
  }
  preview.needs_reboot = reply->needs_reboot;
  preview.detail_json = preview_json(*reply);
  const std::string name = reply->device_name.empty() ? spec.device : reply->device_name;
  if (reply->matches) {
    preview.lines.push_back(fmt::format("firmware: {} already runs {}: nothing to install", name,
                                        reply->current_version));
  } else {
    preview.lines.push_back(
        fmt::format("firmware: {} {} -> {} from {}", name,
                    reply->current_version.empty() ? "(unknown version)" : reply->current_version,
                    spec.version, spec.cabinet));
    if (preview.needs_reboot) preview.lines.emplace_back("  completes after a reboot");
  }
  preview.lines.push_back(fmt::format("  irreversible: {}", kNeverUndone));
  return preview;
}

}  // namespace bootstate

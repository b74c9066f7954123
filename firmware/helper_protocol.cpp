#include "firmware/helper_protocol.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>

namespace bootstate {
namespace {

constexpr std::string_view kResultNames[] = {"done", "awaiting-reboot", "described", "failed"};

std::optional<HelperResult> parse_result(std::string_view text) {
  for (std::size_t i = 0; i < std::size(kResultNames); ++i) {
    if (kResultNames[i] == text) return static_cast<HelperResult>(i);
  }
  return std::nullopt;
}

// Messages quote what the helper printed; a runaway helper must not flood the state file.
std::string excerpt(std::string_view text) {
  constexpr std::size_t kLimit = 200;
  if (text.size() <= kLimit) return std::string(text);
  return std::string(text.substr(0, kLimit)) + "...";
}

void write_string(rapidjson::Writer<rapidjson::StringBuffer>& writer, const char* key,
                  const std::string& value) {
  writer.Key(key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_bool(rapidjson::Writer<rapidjson::StringBuffer>& writer, const char* key, bool value) {
  writer.Key(key);
  writer.Bool(value);
}

}  // namespace

std::string_view to_string(HelperResult result) {
  return kResultNames[static_cast<std::size_t>(result)];
}

std::string_view to_string(HelperCommand command) {
  switch (command) {
    case HelperCommand::Describe:
      return "describe";
    case HelperCommand::Install:
      return "install";
    case HelperCommand::Verify:
      return "verify";
  }
  return "describe";
}

std::string reply_to_json(const HelperReply& reply) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  write_string(writer, "result", std::string(to_string(reply.result)));
  write_bool(writer, "installed", reply.installed);
  write_string(writer, "device_id", reply.device_id);
  write_string(writer, "device_name", reply.device_name);
  write_string(writer, "current_version", reply.current_version);
  write_string(writer, "target_version", reply.target_version);
  write_bool(writer, "matches", reply.matches);
  write_bool(writer, "needs_reboot", reply.needs_reboot);
  write_string(writer, "blocker", reply.blocker);
  write_string(writer, "message", reply.message);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Expected<HelperReply> parse_reply(std::string_view stdout_text) {
  rapidjson::Document document;
  document.Parse(stdout_text.data(), stdout_text.size());
  if (document.HasParseError() || !document.IsObject()) {
    return make_error(ErrorCode::Corrupt, "bootstate-fwupd printed no JSON reply: \"{}\"",
                      excerpt(stdout_text));
  }
  auto text_field = [&](const char* key) -> std::string {
    auto member = document.FindMember(key);
    if (member == document.MemberEnd() || !member->value.IsString()) return {};
    return std::string(member->value.GetString(), member->value.GetStringLength());
  };
  auto bool_field = [&](const char* key) {
    auto member = document.FindMember(key);
    return member != document.MemberEnd() && member->value.IsBool() && member->value.GetBool();
  };
  auto result = parse_result(text_field("result"));
  if (!result) {
    return make_error(ErrorCode::Corrupt, "bootstate-fwupd reply has no valid \"result\": \"{}\"",
                      excerpt(stdout_text));
  }
  HelperReply reply;
  reply.result = *result;
  reply.installed = bool_field("installed");
  reply.device_id = text_field("device_id");
  reply.device_name = text_field("device_name");
  reply.current_version = text_field("current_version");
  reply.target_version = text_field("target_version");
  reply.matches = bool_field("matches");
  reply.needs_reboot = bool_field("needs_reboot");
  reply.blocker = text_field("blocker");
  reply.message = text_field("message");
  return reply;
}

int exit_status_for(const HelperReply& reply) {
  return reply.result == HelperResult::Failed ? 1 : 0;
}

std::vector<std::string> helper_argv(const std::string& helper, HelperCommand command,
                                     const FirmwareSpec& spec, std::uint32_t timeout_seconds) {
  std::vector<std::string> argv{helper, std::string(to_string(command)), "--device", spec.device};
  if (command != HelperCommand::Verify && !spec.cabinet.empty()) {
    argv.insert(argv.end(), {"--cabinet", spec.cabinet});
  }
  if (!spec.version.empty()) argv.insert(argv.end(), {"--version", spec.version});
  if (command == HelperCommand::Install) {
    if (spec.allow_older) argv.emplace_back("--allow-older");
    if (spec.allow_reinstall) argv.emplace_back("--allow-reinstall");
  }
  if (timeout_seconds > 0) argv.insert(argv.end(), {"--timeout", std::to_string(timeout_seconds)});
  return argv;
}

}  // namespace bootstate

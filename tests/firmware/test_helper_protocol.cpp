// The helper protocol on its own: what the helper prints is what the executor reads, and
// nothing malformed reads as success. No daemon needed.
#include <doctest/doctest.h>

#include <algorithm>

#include "firmware/helper_protocol.hpp"

namespace bootstate {

TEST_CASE("helper protocol: a reply survives the round trip through JSON") {
  HelperReply reply;
  reply.result = HelperResult::AwaitingReboot;
  reply.installed = true;
  reply.device_id = "08d460be";
  reply.device_name = "Integrated Webcam\u2122 \"quoted\"";
  reply.current_version = "1.2.2";
  reply.target_version = "1.2.4";
  reply.needs_reboot = true;
  reply.message = "staged";
  auto parsed = parse_reply(reply_to_json(reply) + "\n");
  REQUIRE(parsed);
  CHECK(parsed->result == HelperResult::AwaitingReboot);
  CHECK(parsed->installed);
  CHECK(parsed->device_name == reply.device_name);
  CHECK(parsed->current_version == "1.2.2");
  CHECK(parsed->target_version == "1.2.4");
  CHECK(parsed->needs_reboot);
  CHECK_FALSE(parsed->matches);
  CHECK(parsed->message == "staged");
  CHECK(exit_status_for(*parsed) == 0);
}

TEST_CASE("helper protocol: garbage, an empty reply or an unknown result is an error") {
  for (const char* text : {"", "installed!", "[]", "{\"result\":\"ok\"}", "{\"installed\":true}"}) {
    auto parsed = parse_reply(text);
    CHECK_FALSE(parsed);
    if (!parsed) CHECK(parsed.error().code == ErrorCode::Corrupt);
  }
  auto failed = parse_reply(R"({"result":"failed","message":"no device"})");
  REQUIRE(failed);
  CHECK(exit_status_for(*failed) == 1);
}

TEST_CASE("helper protocol: argv carries the spec, flags only for install") {
  FirmwareSpec spec{"b585990a-003e-5270-89d5-3705a17f9a43", "/nix/store/x.cab", "1.2.4", true,
                    true};
  const auto install = helper_argv("/h", HelperCommand::Install, spec, 60);
  CHECK(install == std::vector<std::string>{"/h", "install", "--device", spec.device, "--cabinet",
                                            "/nix/store/x.cab", "--version", "1.2.4",
                                            "--allow-older", "--allow-reinstall", "--timeout",
                                            "60"});
  const auto verify = helper_argv("/h", HelperCommand::Verify, spec, 0);
  CHECK(verify ==
        std::vector<std::string>{"/h", "verify", "--device", spec.device, "--version", "1.2.4"});
  const auto describe = helper_argv("/h", HelperCommand::Describe, spec, 5);
  CHECK(describe[1] == "describe");
  CHECK(std::find(describe.begin(), describe.end(), "--allow-older") == describe.end());
  CHECK(std::find(describe.begin(), describe.end(), "--cabinet") != describe.end());
}

}  // namespace bootstate

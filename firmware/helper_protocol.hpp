// The protocol between bootstate and its fwupd helper, `bootstate-fwupd` (docs/FIRMWARE.md).
//
// Why a separate process: libfwupd pulls glib, gio and json-glib, and the `bootstate` binary
// is carried by the initrd, which must stay small and glib-free. The helper is the only code
// that links libfwupd; bootstate talks to it through argv and one JSON object on stdout. This
// header is the single definition of that protocol: the helper writes HelperReply with
// reply_to_json(), the step executor reads it with parse_reply(). It needs no glib.
//
// Commands (argv after the program name):
//   describe --device D [--cabinet C --version V] [--timeout S]
//   install  --device D --cabinet C --version V [--allow-older] [--allow-reinstall] [--timeout S]
//   verify   --device D --version V [--timeout S]
// D is a fwupd device id (or a unique prefix of one) or a GUID the device has. S bounds the
// whole command, including the wait for fwupd to answer on the system bus (default 60 s).
//
// Reply: exactly one line on stdout, a JSON object:
//   {"result": "done" | "awaiting-reboot" | "described" | "failed",
//    "installed": bool,       // install: this run wrote firmware
//    "device_id", "device_name", "current_version", "target_version": string,
//    "matches": bool,         // the device runs target_version now
//    "needs_reboot": bool,    // the update completes only after a reboot (fwupd says so)
//    "blocker": string,       // describe: why the step cannot run as planned, "" if nothing
//    "message": string}       // in words; for "failed" fwupd's own message where it gave one
// Exit status: 0 for done, awaiting-reboot and described; 1 for failed; 2 for a usage error
// (the reply is then "failed" too). Progress goes to stderr as lines
// "progress: STATUS PERCENT%" and, when NOTIFY_SOCKET is set, to systemd as STATUS=.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/plan.hpp"

namespace bootstate {

enum class HelperResult : std::uint8_t {
  Done,            // the device runs the target version
  AwaitingReboot,  // firmware was staged; fwupd finishes it during the next boot
  Described,       // describe answered (blocker says whether the step can run)
  Failed,          // anything else: message says what
};
std::string_view to_string(HelperResult result);

struct HelperReply {
  HelperResult result = HelperResult::Failed;
  bool installed = false;
  std::string device_id;
  std::string device_name;
  std::string current_version;
  std::string target_version;
  bool matches = false;
  bool needs_reboot = false;
  std::string blocker;
  std::string message;
};

// One line of JSON, without the trailing newline.
std::string reply_to_json(const HelperReply& reply);

// Reads the helper's stdout. Anything but one well-formed reply object is an error
// (ErrorCode::Corrupt) quoting what came, so a broken helper never reads as success.
Expected<HelperReply> parse_reply(std::string_view stdout_text);

// The exit status the helper uses for a reply (0 or 1), see above.
int exit_status_for(const HelperReply& reply);

enum class HelperCommand : std::uint8_t { Describe, Install, Verify };
std::string_view to_string(HelperCommand command);

// argv for running `helper` with `command` on `spec`; `timeout_seconds` 0 leaves the helper's
// default. Describe passes the cabinet and version too, so the helper can check the cabinet.
std::vector<std::string> helper_argv(const std::string& helper, HelperCommand command,
                                     const FirmwareSpec& spec, std::uint32_t timeout_seconds);

}  // namespace bootstate

// bootstate-fwupd: the firmware step's hands. It asks the fwupd daemon to describe, install and
// verify one firmware update and answers with one JSON object on stdout. The protocol (commands,
// reply fields, exit statuses) is defined in firmware/helper_protocol.hpp and docs/FIRMWARE.md.
//
// Rule of this file: success is only ever reported when fwupd shows the device running the
// wanted version (done) or says the update completes at the next boot (awaiting-reboot).
// Every other path is "failed" with fwupd's own words where it gave any.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/fwupd_session.hpp"
#include "firmware/helper_protocol.hpp"

namespace bootstate {
namespace {

struct Options {
  std::string command;
  FirmwareSpec spec;
  std::optional<std::uint32_t> timeout_seconds;
};

constexpr std::string_view kUsage =
    "usage: bootstate-fwupd describe|install|verify --device D [--cabinet C] [--version V]\n"
    "       [--allow-older] [--allow-reinstall] [--timeout SECONDS]";

Expected<Options> parse_options(int argc, char** argv) {
  if (argc < 2) return make_error(ErrorCode::InvalidInput, "{}", kUsage);
  Options options;
  options.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> Expected<std::string> {
      if (i + 1 >= argc) return make_error(ErrorCode::InvalidInput, "{} needs a value", arg);
      return std::string(argv[++i]);
    };
    if (arg == "--allow-older") {
      options.spec.allow_older = true;
    } else if (arg == "--allow-reinstall") {
      options.spec.allow_reinstall = true;
    } else if (arg == "--device" || arg == "--cabinet" || arg == "--version" ||
               arg == "--timeout") {
      auto text = value();
      if (!text) return text.error();
      if (arg == "--device") options.spec.device = *text;
      if (arg == "--cabinet") options.spec.cabinet = *text;
      if (arg == "--version") options.spec.version = *text;
      if (arg == "--timeout") {
        char* end = nullptr;
        const unsigned long seconds = std::strtoul(text->c_str(), &end, 10);
        if (text->empty() || *end != '\0' || seconds == 0 || seconds > 86400) {
          return make_error(ErrorCode::InvalidInput, "--timeout: \"{}\" is not 1..86400", *text);
        }
        options.timeout_seconds = static_cast<std::uint32_t>(seconds);
      }
    } else {
      return make_error(ErrorCode::InvalidInput, "unknown argument \"{}\"\n{}", arg, kUsage);
    }
  }
  const auto& spec = options.spec;
  const bool install = options.command == "install";
  if (options.command != "describe" && !install && options.command != "verify") {
    return make_error(ErrorCode::InvalidInput, "unknown command \"{}\"\n{}", options.command,
                      kUsage);
  }
  if (spec.device.empty()) return make_error(ErrorCode::InvalidInput, "--device is required");
  if ((install || options.command == "verify") && spec.version.empty()) {
    return make_error(ErrorCode::InvalidInput, "{} needs --version", options.command);
  }
  if (install && spec.cabinet.empty()) {
    return make_error(ErrorCode::InvalidInput, "install needs --cabinet");
  }
  return options;
}

HelperReply failed(HelperReply reply, std::string message) {
  reply.result = HelperResult::Failed;
  reply.message = std::move(message);
  return reply;
}

void fill_device(HelperReply& reply, const FwupdDeviceInfo& device, const std::string& version) {
  reply.device_id = device.id;
  reply.device_name = device.name;
  reply.current_version = device.version;
  reply.target_version = version;
  reply.matches = !version.empty() && device.version == version;
}

// Why the cabinet cannot bring `device` to `version`, or "" when it can. Also tells whether
// fwupd will finish the update only at the next boot.
std::string check_cabinet(FwupdSession& session, const FwupdDeviceInfo& device,
                          const FirmwareSpec& spec, bool& needs_reboot) {
  auto targets = session.cabinet_targets(spec.cabinet);
  if (!targets) return fmt::format("cabinet {}: {}", spec.cabinet, targets.error().message);
  std::vector<std::string> others;
  for (const auto& target : *targets) {
    if (target.device_id != device.id) {
      others.push_back(target.device_name.empty() ? fmt::format("{}", fmt::join(target.guids, ","))
                                                  : target.device_name);
      continue;
    }
    needs_reboot = needs_reboot || target.needs_reboot;
    if (!spec.version.empty() && target.release_version != spec.version) {
      return fmt::format("cabinet {} contains version {}, but the plan expects {}", spec.cabinet,
                         target.release_version, spec.version);
    }
    if (!target.trusted && session.only_trusted()) {
      return fmt::format("cabinet {} has no signature fwupd trusts (fwupd.conf OnlyTrusted=true)",
                         spec.cabinet);
    }
    return {};
  }
  return fmt::format(
      "cabinet {} is for another device ({}), not {} ({})", spec.cabinet,
      others.empty() ? "none on this machine" : fmt::format("{}", fmt::join(others, ", ")),
      device.name, device.id);
}

bool completes_at_boot(const FwupdDeviceInfo& device) {
  return device.needs_reboot || device.needs_shutdown || device.update_state == "pending" ||
         device.update_state == "needs-reboot";
}

HelperReply describe(FwupdSession& session, const FirmwareSpec& spec) {
  HelperReply reply;
  reply.result = HelperResult::Described;
  reply.target_version = spec.version;
  auto device = session.find_device(spec.device);
  if (!device) {
    reply.blocker = device.error().message;
    return reply;
  }
  fill_device(reply, *device, spec.version);
  // uefi_capsule only stages a capsule that the firmware applies while booting.
  reply.needs_reboot = device->needs_reboot || device->plugin == "uefi_capsule";
  if (!spec.cabinet.empty() && !reply.matches) {
    reply.blocker = check_cabinet(session, *device, spec, reply.needs_reboot);
  }
  reply.message = reply.matches ? fmt::format("{} runs {}", device->name, device->version)
                                : fmt::format("{}: {} -> {}", device->name, device->version,
                                              spec.version.empty() ? "?" : spec.version);
  return reply;
}

HelperReply install(FwupdSession& session, const FirmwareSpec& spec) {
  HelperReply reply;
  reply.target_version = spec.version;
  auto device = session.find_device(spec.device);
  if (!device) return failed(reply, device.error().message);
  fill_device(reply, *device, spec.version);
  if (reply.matches) {
    reply.result = HelperResult::Done;
    reply.message =
        fmt::format("{} already runs {}: nothing installed", device->name, device->version);
    return reply;
  }
  if (auto blocker = check_cabinet(session, *device, spec, reply.needs_reboot); !blocker.empty()) {
    return failed(reply, blocker);
  }
  std::fprintf(stderr, "installing %s on %s (%s): %s -> %s\n", spec.cabinet.c_str(),
               device->name.c_str(), device->id.c_str(), device->version.c_str(),
               spec.version.c_str());
  if (auto installed =
          session.install(device->id, spec.cabinet, spec.allow_older, spec.allow_reinstall);
      !installed) {
    return failed(reply, installed.error().message);
  }
  reply.installed = true;
  auto after = session.find_device(device->id);
  if (!after) return failed(reply, "after installing: " + after.error().message);
  fill_device(reply, *after, spec.version);
  if (reply.matches) {
    reply.result = HelperResult::Done;
    reply.message = fmt::format("{} now runs {}", after->name, after->version);
  } else if (completes_at_boot(*after)) {
    reply.result = HelperResult::AwaitingReboot;
    reply.needs_reboot = true;
    reply.message = fmt::format("{} {} is staged; fwupd completes it at the next {}", after->name,
                                spec.version, after->needs_shutdown ? "shutdown" : "reboot");
  } else if (after->needs_activation) {
    reply = failed(
        reply, fmt::format("{} was written but needs activation (fwupdmgr activate)", after->name));
  } else {
    reply = failed(reply, fmt::format("fwupd reported success, but {} runs {}, not {}", after->name,
                                      after->version, spec.version));
  }
  return reply;
}

HelperReply verify(FwupdSession& session, const FirmwareSpec& spec) {
  HelperReply reply;
  reply.target_version = spec.version;
  auto device = session.find_device(spec.device);
  if (!device) return failed(reply, device.error().message);
  fill_device(reply, *device, spec.version);
  auto results = session.results(device->id);
  if (!results) return failed(reply, results.error().message);
  std::string recorded = "fwupd recorded no result";
  if (*results) {
    const auto& result = **results;
    recorded = fmt::format("fwupd recorded {}{}{}", result.update_state,
                           result.update_error.empty() ? "" : ": ", result.update_error);
  }
  // Read, then forget: the next verify of this device must not see this result again. (fwupd
  // refuses to clear a result it already reports as notified, so only a present one is.)
  if (*results) {
    if (auto cleared = session.clear_results(device->id); !cleared) {
      return failed(reply, cleared.error().message);
    }
  }
  if (reply.matches) {
    reply.result = HelperResult::Done;
    reply.message = fmt::format("{} runs {} ({})", device->name, device->version, recorded);
    return reply;
  }
  return failed(reply, fmt::format("after the reboot {} runs {}, not {} ({})", device->name,
                                   device->version, spec.version, recorded));
}

int emit(const HelperReply& reply, int status) {
  std::printf("%s\n", reply_to_json(reply).c_str());
  std::fflush(stdout);
  if (reply.result == HelperResult::Failed) {
    std::fprintf(stderr, "bootstate-fwupd: %s\n", reply.message.c_str());
  }
  return status;
}

}  // namespace
}  // namespace bootstate

int main(int argc, char** argv) {
  using namespace bootstate;
  auto options = parse_options(argc, argv);
  if (!options) return emit(failed({}, options.error().message), 2);
  const bool installing = options->command == "install";
  const std::uint32_t timeout = options->timeout_seconds.value_or(installing ? 600 : 60);
  auto session = FwupdSession::connect(std::chrono::seconds(timeout));
  HelperReply reply;
  if (!session) {
    reply = failed({}, session.error().message);
    reply.target_version = options->spec.version;
  } else if (options->command == "describe") {
    reply = describe(**session, options->spec);
  } else if (installing) {
    reply = install(**session, options->spec);
  } else {
    reply = verify(**session, options->spec);
  }
  return emit(reply, exit_status_for(reply));
}

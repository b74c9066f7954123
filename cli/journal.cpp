#include "cli/journal.hpp"

#include <syslog.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>

#include "stage2/libsystemd.hpp"

namespace bootstate::cli {
namespace {

int priority_of(Event event) {
  switch (event) {
    case Event::StepFailed:
    case Event::AttemptFailed:
      return LOG_ERR;
    case Event::StoreWarning:
    case Event::ItemReported:
    case Event::AttemptAbandoned:
    case Event::MarkedBad:
      return LOG_WARNING;
    default:
      return LOG_INFO;
  }
}

}  // namespace

void JournalSink::event(Event event, std::string_view text) {
  std::string message(text);
  // Journal delivery is best effort: bootstate's record of what happened is the state store.
  // libsystemd is loaded here, on the first event, not at start (stage2/libsystemd.hpp).
  const auto* systemd = stage2::libsystemd::library();
  if (systemd != nullptr) {
    systemd->journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%i", priority_of(event),
                          "MESSAGE_ID=%s", std::string(message_id(event)).c_str(),
                          "SYSLOG_IDENTIFIER=bootstate", nullptr);
  }
  // Without libsystemd the event still goes somewhere a person or the service manager sees.
  if (to_stderr_ || systemd == nullptr) std::fprintf(stderr, "bootstate: %s\n", message.c_str());
}

void JournalSink::status(std::string_view text) {
  // sd_notify does nothing without $NOTIFY_SOCKET (not started by a Type=notify unit): then
  // there is no reason to load libsystemd at all.
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  if (const auto* systemd = stage2::libsystemd::library()) {
    systemd->notifyf(0, "STATUS=%.*s", static_cast<int>(text.size()), text.data());
  }
}

void JournalSink::extend_timeout(std::uint64_t usec) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  if (const auto* systemd = stage2::libsystemd::library()) {
    systemd->notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", static_cast<unsigned long long>(usec));
  }
}

Expected<void> request_reboot() {
  const auto* systemd = stage2::libsystemd::library();
  if (systemd == nullptr) {
    return make_error(ErrorCode::Failed, "cannot start reboot.target: {}",
                      stage2::libsystemd::load_error());
  }
  sd_bus* bus = nullptr;
  int result = systemd->bus_new(&bus);
  if (result >= 0) result = systemd->bus_set_address(bus, "unix:path=/run/systemd/private");
  if (result >= 0) result = systemd->bus_start(bus);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  if (result >= 0) {
    result = systemd->bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "StartUnit", &error,
                                      nullptr, "ss", "reboot.target", "replace-irreversibly");
  }
  std::string message = error.message != nullptr ? error.message : errno_text(-result);
  systemd->bus_error_free(&error);
  systemd->bus_flush_close_unref(bus);
  if (result < 0) return make_error(ErrorCode::Failed, "cannot start reboot.target: {}", message);
  return {};
}

}  // namespace bootstate::cli

#include "cli/journal.hpp"

#include <syslog.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <cstdio>

namespace bootstate::cli {
namespace {

int priority_of(Event event) {
  switch (event) {
    case Event::StepFailed:
    case Event::AttemptFailed:
      return LOG_ERR;
    case Event::StoreWarning:
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
  sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%i", priority_of(event), "MESSAGE_ID=%s",
                  std::string(message_id(event)).c_str(), "SYSLOG_IDENTIFIER=bootstate", nullptr);
  if (to_stderr_) std::fprintf(stderr, "bootstate: %s\n", message.c_str());
}

void JournalSink::status(std::string_view text) {
  sd_notifyf(0, "STATUS=%.*s", static_cast<int>(text.size()), text.data());
}

Expected<void> request_reboot() {
  sd_bus* bus = nullptr;
  int result = sd_bus_new(&bus);
  if (result >= 0) result = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
  if (result >= 0) result = sd_bus_start(bus);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  if (result >= 0) {
    result = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "StartUnit", &error, nullptr,
                                "ss", "reboot.target", "replace-irreversibly");
  }
  std::string message = error.message != nullptr ? error.message : errno_text(-result);
  sd_bus_error_free(&error);
  sd_bus_flush_close_unref(bus);
  if (result < 0) return make_error(ErrorCode::Failed, "cannot start reboot.target: {}", message);
  return {};
}

}  // namespace bootstate::cli

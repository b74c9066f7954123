// Events go to the journal with stable MESSAGE_IDs (docs/EVENTS.md) and, for a person at a
// terminal, to stderr; progress goes to the unit's STATUS= through sd_notify.
#pragma once

#include "core/phase_runner.hpp"

namespace bootstate::cli {

class JournalSink final : public EventSink {
 public:
  explicit JournalSink(bool to_stderr) : to_stderr_(to_stderr) {}
  void event(Event event, std::string_view text) override;
  void status(std::string_view text) override;
  void extend_timeout(std::uint64_t usec) override;

 private:
  bool to_stderr_;
};

// Asks systemd (PID 1, over its private bus, which also exists in the initrd) to reboot.
Expected<void> request_reboot();

}  // namespace bootstate::cli

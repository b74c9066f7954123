#include "cli/crash_hook.hpp"

#include <csignal>
#include <cstdlib>
#include <string>

namespace bootstate::cli {
namespace {

class CrashingSlots final : public SlotStorage {
 public:
  CrashingSlots(SlotStorage& inner, int at, std::string mode)
      : inner_(inner), at_(at), mode_(std::move(mode)) {}

  Expected<std::optional<std::string>> read(int slot) override { return inner_.read(slot); }
  std::size_t size_to_write(int slot, std::size_t frame_bytes) override {
    return inner_.size_to_write(slot, frame_bytes);
  }
  Expected<void> write(int slot, std::string_view bytes) override {
    if (++writes_ != at_) return inner_.write(slot, bytes);
    if (mode_ == "before") std::raise(SIGKILL);
    if (mode_ == "torn") {
      (void)inner_.write(slot, bytes.substr(0, bytes.size() / 2));
      std::raise(SIGKILL);
    }
    auto written = inner_.write(slot, bytes);
    std::raise(SIGKILL);
    return written;
  }
  Expected<void> move_aside() override { return inner_.move_aside(); }
  bool has_moved_aside() const override { return inner_.has_moved_aside(); }
  std::string describe() const override { return inner_.describe(); }

 private:
  SlotStorage& inner_;
  int at_;
  std::string mode_;
  int writes_ = 0;
};

}  // namespace

SlotStorage& maybe_crashing(SlotStorage& inner, std::unique_ptr<SlotStorage>& holder) {
  const char* spec = std::getenv("BOOTSTATE_TEST_CRASH_AT");
  if (spec == nullptr) return inner;
  std::string text(spec);
  auto colon = text.find(':');
  int at = std::atoi(text.substr(0, colon).c_str());
  std::string mode = colon == std::string::npos ? "after" : text.substr(colon + 1);
  holder = std::make_unique<CrashingSlots>(inner, at, mode);
  return *holder;
}

}  // namespace bootstate::cli

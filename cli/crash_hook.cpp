#include "cli/crash_hook.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>

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
  Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) override {
    return inner_.read_head(slot, bytes);
  }
  Expected<std::optional<std::string>> read_idle_certificate() override {
    return inner_.read_idle_certificate();
  }
  // idle:MODE: the cut is around the idle certificate's write instead of a commit.
  Expected<void> write_idle_certificate(std::string_view bytes) override {
    if (at_ != kIdleCertificate) return inner_.write_idle_certificate(bytes);
    if (mode_ == "before") std::raise(SIGKILL);
    if (mode_ == "torn") {
      (void)inner_.write_idle_certificate(bytes.substr(0, bytes.size() / 2));
      std::raise(SIGKILL);
    }
    auto written = inner_.write_idle_certificate(bytes);
    std::raise(SIGKILL);
    return written;
  }
  static constexpr int kIdleCertificate = -1;

 private:
  SlotStorage& inner_;
  int at_;
  std::string mode_;
  int writes_ = 0;
};

// Kills the process before or after the Nth change the boot loader makes.
class CrashingLoader final : public BootLoader {
 public:
  CrashingLoader(BootLoader& inner, int at, bool before)
      : inner_(inner), at_(at), before_(before) {}

 private:
  // Defined before its callers: they return its deduced type.
  template <typename Change>
  auto around(Change change) {
    const bool cut = ++changes_ == at_;
    if (cut && before_) std::raise(SIGKILL);
    auto done = change();
    if (cut) std::raise(SIGKILL);
    return done;
  }

 public:
  Expected<BootedEntry> booted_entry() override { return inner_.booted_entry(); }
  Expected<std::optional<std::string>> entry_for_generation(std::string_view generation) override {
    return inner_.entry_for_generation(generation);
  }
  Expected<void> mark_bad() override {
    return around([&] { return inner_.mark_bad(); });
  }
  Expected<void> rearm() override {
    return around([&] { return inner_.rearm(); });
  }
  Expected<void> mark_good() override {
    return around([&] { return inner_.mark_good(); });
  }
  Expected<void> set_one_shot(std::string_view entry_id) override {
    return around([&] { return inner_.set_one_shot(entry_id); });
  }
  Expected<std::vector<std::string>> rearm_generation(std::string_view generation) override {
    return around([&] { return inner_.rearm_generation(generation); });
  }

 private:
  BootLoader& inner_;
  int at_;
  bool before_;
  int changes_ = 0;
};

constexpr std::string_view kLoaderPrefix = "loader:";
constexpr std::string_view kIdlePrefix = "idle:";

}  // namespace

SlotStorage& maybe_crashing(SlotStorage& inner, std::unique_ptr<SlotStorage>& holder) {
  const char* spec = std::getenv("BOOTSTATE_TEST_CRASH_AT");
  if (spec == nullptr) return inner;
  std::string text(spec);
  if (text.rfind(kLoaderPrefix, 0) == 0) return inner;  // a cut around a rename, not a commit
  if (text.rfind(kIdlePrefix, 0) == 0) {
    holder = std::make_unique<CrashingSlots>(inner, CrashingSlots::kIdleCertificate,
                                             text.substr(kIdlePrefix.size()));
    return *holder;
  }
  auto colon = text.find(':');
  int at = std::atoi(text.substr(0, colon).c_str());
  std::string mode = colon == std::string::npos ? "after" : text.substr(colon + 1);
  holder = std::make_unique<CrashingSlots>(inner, at, mode);
  return *holder;
}

BootLoader& maybe_crashing(BootLoader& inner, std::unique_ptr<BootLoader>& holder) {
  const char* spec = std::getenv("BOOTSTATE_TEST_CRASH_AT");
  if (spec == nullptr) return inner;
  std::string text(spec);
  if (text.rfind(kLoaderPrefix, 0) != 0) return inner;
  text = text.substr(kLoaderPrefix.size());
  auto colon = text.find(':');
  int at = std::atoi(text.substr(0, colon).c_str());
  bool before = colon != std::string::npos && text.substr(colon + 1) == "before";
  holder = std::make_unique<CrashingLoader>(inner, at, before);
  return *holder;
}

}  // namespace bootstate::cli

#include "cli/crash_hook.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>

namespace bootstate::cli {
namespace {

// `bytes` written over `old` up to the middle of what differs (bytes beyond `old` differ),
// `old` after it: a write cut off halfway, the pages before the cut on disk.
std::string torn_write(std::string_view old, std::string_view bytes) {
  std::size_t changed = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) changed += i >= old.size() || old[i] != bytes[i];
  std::size_t cut = 0;
  for (std::size_t landed = 0; cut < bytes.size() && landed < changed / 2; ++cut) {
    landed += cut >= old.size() || old[cut] != bytes[cut];
  }
  std::string frame(bytes.substr(0, cut));
  if (old.size() > cut) frame.append(old.substr(cut, std::min(old.size(), bytes.size()) - cut));
  return frame;
}

class CrashingSlots final : public SlotStorage {
 public:
  CrashingSlots(SlotStorage& inner, int at, std::string mode)
      : inner_(inner), at_(at), mode_(std::move(mode)) {}

  Expected<std::optional<std::string>> read(int slot) override { return inner_.read(slot); }
  std::size_t size_to_write(int slot, std::size_t frame_bytes) override {
    return inner_.size_to_write(slot, frame_bytes);
  }
  Expected<bool> read_into(int slot, std::string& bytes) override {
    return inner_.read_into(slot, bytes);
  }
  Expected<std::unique_ptr<Reader>> open_reader(int slot) override {
    return inner_.open_reader(slot);
  }
  // Both ways a commit writes go through the cut unchanged otherwise: a cut proves only the
  // path it cuts (a commit after a slot's first in a run takes write_changed, without the
  // read-back that write() does).
  Expected<void> write(int slot, std::string_view bytes) override {
    return cut(slot, bytes, [&](std::string_view frame) { return inner_.write(slot, frame); });
  }
  Expected<void> write_changed(int slot, std::string_view bytes,
                               const std::vector<PageRun>& changed) override {
    return cut(slot, bytes,
               [&](std::string_view frame) { return inner_.write_changed(slot, frame, changed); });
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
  template <typename Write>
  Expected<void> cut(int slot, std::string_view bytes, Write write) {
    if (++writes_ != at_) return write(bytes);
    if (mode_ == "before") std::raise(SIGKILL);
    if (mode_ == "torn") {
      (void)write(torn_frame(slot, bytes));
      std::raise(SIGKILL);
    }
    auto written = write(bytes);
    std::raise(SIGKILL);
    return written;
  }

  // What a power cut halfway through the write leaves in the slot: the first half of the bytes
  // that change (in offset order, as the runs go out) new, the rest as the slot held them.
  std::string torn_frame(int slot, std::string_view bytes) {
    std::string old;
    auto exists = inner_.read_into(slot, old);
    if (!exists || !*exists) old.clear();
    return torn_write(old, bytes);
  }

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

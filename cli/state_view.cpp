#include "cli/state_view.hpp"

#include <chrono>
#include <thread>

#include "core/slot_files.hpp"
#include "core/store.hpp"
#include "core/store_lock.hpp"
#include "core/utc_time.hpp"

namespace bootstate::cli {
namespace {

constexpr int kRereadsWhileWritten = 8;
constexpr auto kRereadPause = std::chrono::milliseconds(25);

// The store's slots with every write refused: LoadMode::ReadOnly already moves nothing, and this
// makes any write that a change elsewhere might add fail loudly instead of touching the ESP.
class ReadOnlySlots final : public SlotStorage {
 public:
  explicit ReadOnlySlots(SlotStorage& inner) : inner_(inner) {}
  Expected<std::optional<std::string>> read(int slot) override { return inner_.read(slot); }
  Expected<bool> read_into(int slot, std::string& bytes) override {
    return inner_.read_into(slot, bytes);
  }
  Expected<std::unique_ptr<Reader>> open_reader(int slot) override {
    return inner_.open_reader(slot);
  }
  // Forwarded, not the default (a whole read cut short): the store reads both heads to read
  // only the newest slot.
  Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) override {
    return inner_.read_head(slot, bytes);
  }
  Expected<void> write(int, std::string_view) override {
    return make_error(ErrorCode::Unsupported, "read-only view of {}", inner_.describe());
  }
  Expected<void> move_aside() override {
    return make_error(ErrorCode::Unsupported, "read-only view of {}", inner_.describe());
  }
  bool has_moved_aside() const override { return inner_.has_moved_aside(); }
  std::string describe() const override { return inner_.describe(); }

 private:
  SlotStorage& inner_;
};

}  // namespace

Expected<StateSnapshot> read_state(const Machine& machine) {
  auto esp = machine.esp();
  if (!esp) return esp.error();
  const std::string directory = *esp + "/bootstate";
  if (auto access = machine.require_access(
          {directory, directory + "/state.0", directory + "/state.1"}, false);
      !access) {
    return access.error();
  }
  // No lock is taken (a run holds it for a whole phase, hours for a long migration), so a slot
  // can be read while a run writes it in place: half written, it fails its checksum though
  // nothing is wrong, and "state slot N is unusable" would alarm the operator watching
  // `status`. While a writer holds the lock, such a load is read again; a commit's write takes
  // milliseconds. A slot still unusable after that, or with no writer, is reported.
  Expected<LoadResult> loaded = make_error(ErrorCode::Io, "not read");
  for (int read = 0;; ++read) {
    SlotFiles files(directory);
    ReadOnlySlots slots(files);
    StateStore store(slots);
    loaded = store.load(LoadMode::ReadOnly);
    if (!loaded || loaded->warnings.empty() || read == kRereadsWhileWritten ||
        !store_lock_held(machine.rooted(kStoreLockPath))) {
      break;
    }
    std::this_thread::sleep_for(kRereadPause);
  }
  if (!loaded) return loaded.error();
  // The store is lost (or the next run finds it lost and moves it aside): the run's reconcile
  // marks the state, so status and preview show what it will do, held steps included
  // (docs/DESIGN.md "Nothing lost").
  if ((loaded->lost || loaded->would_move_aside) && loaded->state.store_reset_usec == 0) {
    loaded->state.store_reset_usec = 1;
  }
  return StateSnapshot{std::move(loaded->state), std::move(loaded->warnings), *esp};
}

std::string format_time(std::int64_t usec) {
  return usec <= 0 ? "-" : utc_text(usec / 1'000'000);
}

}  // namespace bootstate::cli

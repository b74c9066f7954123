// In-memory SlotStorage for tests: strict (a slot index other than 0 or 1 is an error and is
// counted as misuse), synchronous, counting writes, with injectable failures that model what
// the ESP can do to a write: fail cleanly (ENOSPC before anything changed) or tear it (a power
// cut after part of the buffer reached the medium).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate::testing {

// What a torn write leaves in the slot.
enum class TearMode {
  Truncate,  // only the first K bytes of the new buffer: the file was rewritten from scratch
  OverOld,   // the first K new bytes, then the old slot's bytes beyond K: an in-place
             // overwrite cut before ftruncate (the SlotFiles write order)
};

class FakeSlotStorage : public SlotStorage {
 public:
  Expected<std::optional<std::string>> read(int slot) override;
  // The first `bytes` of the slot, with read()'s failures; not counted as a read.
  Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) override;
  // Counts the write (1-based), then applies the injected failure for that number, if any.
  Expected<void> write(int slot, std::string_view bytes) override;
  // Moves both slots into broken(): the slots become absent.
  Expected<void> move_aside() override;
  bool has_moved_aside() const override { return !broken_.empty(); }
  std::string describe() const override { return "memory"; }

  // The Nth write from the start (1-based, counting every write) fails with ErrorCode::Io
  // ("No space left on device") and leaves the slot exactly as it was.
  void fail_write(int nth) { fail_at_ = nth; }
  // The Nth write keeps only `keep_bytes` of the buffer (see TearMode) and reports an Io error,
  // as the process would not have survived the power cut to see it succeed.
  void tear_write(int nth, std::size_t keep_bytes, TearMode mode = TearMode::Truncate) {
    tear_at_ = nth;
    tear_keep_ = keep_bytes;
    tear_mode_ = mode;
  }
  // Every read fails with ErrorCode::Io (EIO) for this slot.
  void fail_reads(int slot) { failing_read_slot_ = slot; }

  // Raw access for tests that damage or inspect slots directly.
  std::optional<std::string>& slot(int index) { return slots_.at(static_cast<std::size_t>(index)); }
  int writes() const { return writes_; }
  // Whole-slot reads of `slot` so far (read(), not read_head()).
  int reads(int slot) const { return reads_.at(static_cast<std::size_t>(slot)); }
  // Slot written by each write, in order (also the failed ones).
  const std::vector<int>& written_slots() const { return written_slots_; }
  int move_asides() const { return move_asides_; }
  // What move_aside() took away: {slot, bytes}.
  const std::vector<std::pair<int, std::string>>& broken() const { return broken_; }
  // Calls with a slot index other than 0 or 1.
  int misuses() const { return misuses_; }

 private:
  bool valid(int slot);

  // The slot's bytes, or read()'s failure.
  Expected<std::optional<std::string>> contents(int slot);

  std::array<std::optional<std::string>, 2> slots_;
  std::array<int, 2> reads_{};
  int writes_ = 0;
  std::vector<int> written_slots_;
  int fail_at_ = 0;
  int tear_at_ = 0;
  std::size_t tear_keep_ = 0;
  TearMode tear_mode_ = TearMode::Truncate;
  int failing_read_slot_ = -1;
  int move_asides_ = 0;
  std::vector<std::pair<int, std::string>> broken_;
  int misuses_ = 0;
};

}  // namespace bootstate::testing

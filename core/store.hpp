// The durable state store: two slots (SlotStorage), each a framed payload (state_codec.hpp).
//
// Why two slots: the ESP is FAT, which has no atomic rename, so a commit cannot replace one
// file atomically. Instead a commit overwrites the slot that does NOT hold the newest state,
// with the next sequence number, and makes it durable with one fsync. A power cut during the
// write leaves a torn slot whose checksum fails, and the other slot still holds the last
// committed state, which a reader then takes: every outcome is the old or the new state.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "core/slot_frame.hpp"
#include "core/state.hpp"
#include "core/state_layout.hpp"

namespace bootstate {

// What load() may do besides reading. ReadOnly is for status, preview and history: it never
// writes or moves anything, and its warnings say what `run` (a ForUpdate load) will do instead.
enum class LoadMode { ForUpdate, ReadOnly };

struct LoadResult {
  State state;                        // the newest valid state, or a fresh State
  std::uint64_t sequence = 0;         // its sequence number; 0 for a fresh store
  std::vector<std::string> warnings;  // unusable slots that were ignored, the store moved aside
  bool fresh = false;        // no valid slot: `state` is a default State (first boot, or reset)
  bool moved_aside = false;  // every existing slot was corrupt: they were moved aside (.broken)
  // The state was lost: moved aside now, or no slot but ones an earlier run moved aside and
  // did not get to replace (a power cut before its first commit). The engine then holds steps
  // that cannot tell whether they ran (docs/DESIGN.md "Nothing lost").
  bool lost = false;
  bool would_move_aside = false;  // ReadOnly: every slot is corrupt, `run` will move them aside
};

class StateStore {
 public:
  // `storage` must outlive the store.
  explicit StateStore(SlotStorage& storage);

  // Reads both slots and returns the valid one with the highest sequence. A corrupt or torn slot
  // (bad header, checksum, or a payload that does not decode) is ignored with a warning. No slot
  // at all: a fresh State. Slots exist but none is valid: they are moved aside, a fresh State is
  // returned with moved_aside and a warning (logged by the caller; never a silent reset).
  // Errors: Unsupported when the newest checksum-valid slot has a newer format or holds an enum
  // word this build does not know (a rolled-back bootstate must not overwrite what a newer one
  // wrote: nothing is written or moved); Io when
  // a slot cannot be read and no valid slot remains, or when moving aside fails.
  // LoadMode::ReadOnly moves nothing (would_move_aside instead) and leaves the store unloaded
  // for commit(), which then loads again for update.
  Expected<LoadResult> load(LoadMode mode = LoadMode::ForUpdate);

  // Durably records `state` as the newest: exactly one SlotStorage::write, to the slot that is
  // not the newest, with sequence + 1. Loads first if load() was not called. On failure the
  // store still stands at the last successful commit (the other slot is untouched, and the next
  // commit targets the same slot again).
  Expected<void> commit(const State& state);

  // Sequence of the newest committed state (0 when none), after load() or commit().
  std::uint64_t sequence() const { return sequence_; }
  // The slot holding it, -1 when none (for the idle certificate, core/store_idle.hpp).
  int newest_slot() const { return newest_slot_; }
  // Bytes the last commit checksummed (the blocks that changed), for tests and bench/.
  std::size_t last_checksummed_bytes() const { return frame_.last_checksummed_bytes(); }

 private:
  SlotStorage& storage_;
  PayloadLayout layout_;  // where each record went in the last commit
  SlotFrame frame_;       // the last commit's bytes, with what each commit changed
  // The frame version each slot was last written with by this process (0: not since load()):
  // the next write of that slot then names only the pages changed since (write_changed).
  std::array<std::uint64_t, 2> slot_version_{};
  std::size_t payload_end_ = 0;  // where the last commit's payload ended in frame_ (then spaces)
  bool loaded_ = false;
  std::uint64_t sequence_ = 0;
  int newest_slot_ = -1;  // slot holding sequence_, -1 when no slot is valid
};

}  // namespace bootstate

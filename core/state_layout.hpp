// The payload laid out so that a commit rewrites only what changed (issue #17 item 2).
//
// Why a layout and not new files: a payload of format 1 (state_codec.hpp) is what every
// bootstate reads, older ones of rolled-back generations included. Moving definitions or
// history into files of their own would need a new slot format, which an older bootstate
// refuses (it must not guess), so booting an older generation would stop its bootstate from
// working at all. Instead the payload stays one JSON object of format 1, and the commit's cost
// comes from how its bytes are placed: SlotFiles::write writes only the pages that differ from
// the slot's current bytes, so unchanged records must keep their offsets from one commit to the
// next.
//
// The layout, all of it JSON that any reader parses (members are looked up by name, and
// whitespace between tokens is ignored):
//   {"payload_version": 1, "migrations": [ M0 M1 … Mn ], "attempt": …, …every other field… }
// - `migrations` comes first, `attempt` and the other fields that change at every commit after
//   it: a longer attempt record then moves nothing.
// - Each migration record is followed by spaces up to its *capacity*: a record that changes
//   (a step from running to done) keeps its place while it fits. A record's capacity is kept
//   from one commit to the next while the record fits in it, else it is a function of the
//   record's length alone, so a settled record (applied long ago, never changing again) gets the
//   same capacity in every process, and the offsets of the old records are the same in the
//   slots two processes wrote.
// - New records are appended (the engine appends), so they extend the tail.
// Encoding is cached per record: an unchanged record (compared field by field) reuses its
// bytes, and when it also keeps its place it is not copied either (slot_frame.hpp): a commit's
// cost is comparing the records with their cache, not re-encoding or copying 10,000 of them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/slot_frame.hpp"
#include "core/state.hpp"

namespace bootstate {

class PayloadLayout {
 public:
  // Puts the payload of `state` into `frame` from offset `at` on and returns where it ends:
  // decoded by any reader into exactly `state` (as encode_state's bytes are), placed as
  // described above relative to the previous call. A record that is unchanged and keeps its
  // place is not touched at all: the frame already holds its bytes (when the previous call put
  // them into the same frame at the same `at`; else every record is put).
  std::size_t encode(const State& state, SlotFrame& frame, std::size_t at);

  // The room a record of `length` bytes gets when it has no capacity yet or outgrew it:
  // an eighth more, at least 64 bytes, in 64-byte steps.
  static std::size_t capacity_for(std::size_t length);

 private:
  struct Placed {
    MigrationRecord record;  // as encoded in `text`
    std::string text;        // encode_migration(record)
    std::size_t capacity = 0;
    std::size_t offset = 0;  // where the last encode() put separator, text and padding
    bool first = false;      // placed with the first record's separator
  };
  // The records of the last encode(), in their order. The next state usually has the same ids
  // in the same order, with some appended; a record found elsewhere is looked up by id.
  std::vector<Placed> placed_;
  // The frame and offset of the last encode(): the records' offsets are valid only there.
  const SlotFrame* frame_ = nullptr;
  std::size_t at_ = 0;
  // Reorders placed_ to the order of `records`, by id; a record never placed gets an empty
  // Placed (no text: encoded and put).
  void align(const std::vector<MigrationRecord>& records);
};

}  // namespace bootstate

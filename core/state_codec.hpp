// The bytes of the state store: the payload (a State as JSON) and the slot framing around it.
// Pure functions, bytes in and out; the store (store.hpp) decides which slot to trust.
//
// Slot layout (all integers little-endian), fixed for every format version so that any
// bootstate can at least verify a slot and read its sequence:
//   offset  0  magic           8 bytes  "BOOTSTAT"
//   offset  8  format version  u32      kSlotFormatVersion when written by this build
//   offset 12  sequence        u64      increases by one per commit; the newest valid slot wins
//   offset 20  payload length  u64      bytes after the header
//   offset 28  CRC32C          u32      over bytes 0..27 and then the payload
//   offset 32  payload
// A newer format may change the payload's framing, never this header.
//
// Payload (payload version kPayloadVersion): one JSON object (cereal's JSON archive) holding
// `payload_version` and the fields of State under their C++ names; enums are their words
// ("in-progress"), never numbers; an absent `attempt` means none. Compatibility, both ways:
//  - a reader ignores fields it does not know, at every level (an older bootstate of a
//    rolled-back generation reads what a newer one wrote);
//  - a missing field takes its default from state.hpp (a newer bootstate reads an older payload);
//  - an enum word the reader does not know is Corrupt: guessing a state would run or skip work.
// Strings are stored as they are (bytes that are not UTF-8 survive), except that cereal reads
// them back as C strings: whatever follows a NUL byte in a field is lost.
// So a field is only ever added, and a word only ever added, never renamed or given a new
// meaning; a change that older readers must not misread needs a new slot format version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/state.hpp"

namespace bootstate {

inline constexpr std::uint32_t kSlotFormatVersion = 1;
inline constexpr std::uint32_t kPayloadVersion = 1;
inline constexpr std::string_view kSlotMagic = "BOOTSTAT";
inline constexpr std::size_t kSlotHeaderSize = 32;

// The JSON payload of `state`, without indentation (cereal still puts one value per line).
std::string encode_state(const State& state);

// Parses a payload written by any payload version. Errors are ErrorCode::Corrupt and name the
// JSON path: `migrations[2].steps[0].state: unknown step state "paused"`.
Expected<State> decode_state(std::string_view payload);

// One slot as read back from storage.
struct SlotContents {
  std::uint32_t format_version = 0;
  std::uint64_t sequence = 0;
  std::string payload;
};

// Header + payload, format kSlotFormatVersion.
std::string encode_slot(std::uint64_t sequence, std::string_view payload);

// Verifies magic, length and checksum, but not the format version: a slot of a newer format is
// returned as it is (its sequence is still meaningful). Errors are ErrorCode::Corrupt:
// "truncated: 7 bytes, the header alone is 32", "bad magic", "length mismatch: the header
// says 120 payload bytes, the slot holds 80", "checksum mismatch: stored 0x…, computed 0x…".
Expected<SlotContents> decode_slot_frame(std::string_view bytes);

// ErrorCode::Unsupported "state format N is newer than this bootstate supports (M)" when the
// slot's format is newer than kSlotFormatVersion; Corrupt for format 0 (never written).
Expected<void> check_slot_format(const SlotContents& contents);

// decode_slot_frame, then check_slot_format: a slot this build can read, or why not. The
// format check only runs on a slot whose checksum is valid, so a damaged version field reads
// as Corrupt, never as Unsupported.
Expected<SlotContents> decode_slot(std::string_view bytes);

}  // namespace bootstate

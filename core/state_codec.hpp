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
// Payload (payload version kPayloadVersion): one JSON object holding `payload_version` and the
// fields of State under their C++ names; enums are their words ("in-progress"), never numbers;
// an absent `attempt` means none. Compatibility, both ways:
//  - a reader ignores fields it does not know, at every level (an older bootstate of a
//    rolled-back generation reads what a newer one wrote);
//  - a missing field takes its default from state.hpp (a newer bootstate reads an older payload);
//  - an enum word the reader does not know means a newer bootstate wrote the payload: decoding
//    fails with Unsupported (guessing a state would run or skip work) and the store refuses to
//    write over that slot (store.hpp), as for a newer slot format.
// Strings are stored as they are: bytes that are not UTF-8 survive, and so do NUL bytes (a
// bootstate older than the rapidjson codec below reads a string only up to its first NUL).
// So a field is only ever added, and a word only ever added, never renamed or given a new
// meaning; a change that older readers must not misread needs a new slot format version.
//
// Why rapidjson directly and not cereal (the project's serialization dependency), in both
// directions: the payload used to be read and written with cereal's JSON archive, and for the
// largest state bootstate plans for (1,000 migrations x 3 steps + 64 history entries, 1.6 MB)
// bench/store and a CPU-time loop measured, on the shared 2-core build machine at load average
// 3-11 (so ranges, not points):
//                 cereal archive                  rapidjson directly (this code)
//   decode_state  33-55 ms CPU, 34-140 ms wall    3.7-8.4 ms CPU, 5-13 ms wall
//   encode_state  14-21 ms CPU, 15-58 ms wall     4.4-5.2 ms CPU, 4-10 ms wall
// `bootstate --json status` has 20 ms for everything, and every commit encodes the whole state.
// A profile of the cereal codec (perf, decoding and encoding that state) put 75% of the time in
// the iostream wrappers cereal's archives require (they take only streams): rapidjson reading
// and writing one character at a time through std::istream::peek/get and std::ostream::put.
// Here the reader parses in situ into a rapidjson document and walks it (see state_codec.cpp;
// in situ measured 4x faster than a copying parse), and the writer is rapidjson's PrettyWriter
// indenting by 0 - exactly what cereal's archive used with NoIndent() - so the bytes are the
// ones the cereal codec wrote (`"key": value`, one value per line) and a bootstate of either
// kind reads what the other wrote; tests/core/test_state_codec.cpp keeps a payload written by
// the cereal codec as a fixture. rapidjson is the parser underneath cereal's JSON archive
// (Debian's cereal uses the system rapidjson), so this adds no dependency. rapidjson's compact
// Writer (no newlines, no space after ':') would write 5.8% fewer bytes (1,533,028 instead of
// 1,627,669), which every reader accepts, but the tests pin the `"key": value` form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/state.hpp"

namespace bootstate {

inline constexpr std::uint32_t kSlotFormatVersion = 1;
inline constexpr std::uint32_t kPayloadVersion = 1;
inline constexpr std::string_view kSlotMagic = "BOOTSTAT";
inline constexpr std::size_t kSlotHeaderSize = 32;

// The JSON payload of `state`: no indentation, `"key": value`, one value per line (the bytes
// the cereal-based codec wrote).
std::string encode_state(const State& state);

// Pieces of a payload for core/state_layout.hpp, in the same `"key": value` form: one migration
// record as a JSON object, and a JSON object with every State field but `migrations` (and
// without `payload_version`).
std::string encode_migration(const MigrationRecord& migration);
std::string encode_state_except_migrations(const State& state);

// Parses a payload written by any payload version. Errors name the JSON path; they are
// ErrorCode::Unsupported for an enum word this build does not know (`migrations[2].steps[0].state:
// unknown step state "paused"`: a newer bootstate wrote it) and ErrorCode::Corrupt otherwise
// (including arrays and objects nested deeper than kMaxJsonDepth).
Expected<State> decode_state(std::string_view payload);
// The same, parsing in place: `payload`'s bytes are overwritten (strings are unescaped where they
// are), which spares a copy of a payload that can be megabytes (docs/PERFORMANCE.md "(b)").
Expected<State> decode_state_in_place(std::string& payload);
// The same with the document reader alone, which names every fault: the reference that the fast
// reader (state_fast_decode.hpp) decode_state uses first is tested against.
Expected<State> decode_state_by_document(std::string_view payload);

// One slot as read back from storage.
struct SlotContents {
  std::uint32_t format_version = 0;
  std::uint64_t sequence = 0;
  std::string payload;
};

// Header + payload, format kSlotFormatVersion.
std::string encode_slot(std::uint64_t sequence, std::string_view payload);
// The same in place: `frame` holds kSlotHeaderSize bytes of any value and then the payload; the
// header is written over them (a commit builds its frame in a buffer it reuses, state_layout.hpp).
void seal_slot(std::string& frame, std::uint64_t sequence);
// The header in two parts, for a writer that checksums its payload piece by piece
// (slot_frame.hpp): the fields the checksum starts with, then the checksum itself, which must be
// crc32c(payload, crc32c(fields)). The two together are kSlotHeaderSize bytes.
std::string slot_header_fields(std::uint64_t sequence, std::uint64_t payload_size);
void append_slot_checksum(std::string& fields, std::uint32_t checksum);

// Verifies magic, length and checksum, but not the format version: a slot of a newer format is
// returned as it is (its sequence is still meaningful). Errors are ErrorCode::Corrupt:
// "truncated: 7 bytes, the header alone is 32", "bad magic", "length mismatch: the header
// says 120 payload bytes, the slot holds 80", "checksum mismatch: stored 0x…, computed 0x…".
Expected<SlotContents> decode_slot_frame(std::string_view bytes);
// The checks of decode_slot_frame on a slot read in pieces (core/slot_stream.hpp), with the same
// messages: `head` is its first kSlotHeaderSize bytes (fewer when it is shorter), `size` the
// number of all its bytes, and `checksum` gives the CRC32C of its payload continued from that of
// the header's first kSlotChecksumOffset bytes (called only when the checks before it pass).
inline constexpr std::size_t kSlotChecksumOffset = 28;
Expected<SlotContents> check_slot_frame_parts(std::string_view head, std::uint64_t size,
                                              std::function<std::uint32_t()> checksum);

// The sequence in a slot's first kSlotHeaderSize bytes, unchecked (the checksum needs the
// payload); nullopt when they are too short or lack the magic.
std::optional<std::uint64_t> slot_head_sequence(std::string_view head);
// The same checks without taking the payload (no copy): what a load needs of the older slot.
Expected<void> verify_slot_frame(std::string_view bytes);
// The same, keeping `bytes`' buffer as the payload instead of copying it (a slot can be
// megabytes): `bytes` is left empty or unspecified.
Expected<SlotContents> decode_owned_slot_frame(std::string&& bytes);

// ErrorCode::Unsupported "state format N is newer than this bootstate supports (M)" when the
// slot's format is newer than kSlotFormatVersion; Corrupt for format 0 (never written).
Expected<void> check_slot_format(const SlotContents& contents);

// decode_slot_frame, then check_slot_format: a slot this build can read, or why not. The
// format check only runs on a slot whose checksum is valid, so a damaged version field reads
// as Corrupt, never as Unsupported.
Expected<SlotContents> decode_slot(std::string_view bytes);

}  // namespace bootstate

// The idle certificate: what lets an idle `run --phase X` decide from a few KiB instead of
// parsing the whole state (issue #17, part 1).
//
// An idle run (the booted plan's attempt complete, nothing pending, no stale migration with undo
// work, nothing to bless) loads the state, finds nothing to do and commits nothing. With 10,000
// applied migrations that load is megabytes of JSON, three times per boot. The certificate is a
// small file next to the slots, DIR/idle, saying "the state committed as sequence S in slot N
// (frame checksum C, payload length L) is idle for generation G and the plan file with identity
// P". A run that finds it intact and bound to what is on disk now exits 0 without reading more
// than the certificate and the 32-byte header of each slot.
//
// Why it is as trustworthy as the state it vouches for:
//  - it is written only after the commit it names is durable (the slot's fdatasync returned), and
//    only by a run that checked, with the engine's own decisions, that reconcile, next and finish
//    change nothing in any phase for another boot of this generation (settled_in_every_phase);
//  - it names the slot's sequence, frame checksum and payload length, read back from the slot's
//    header: any later commit (by any bootstate, older ones too) writes a higher sequence into
//    the other slot, so the newest header no longer matches and the run parses the full state.
//    A commit torn after its header reached the disk shows a higher sequence too: the full parse
//    then sees the torn slot and takes the old one; a slower path, never a wrong "idle";
//  - it has its own magic, version, length and CRC32C: a torn or damaged certificate is ignored;
//  - the plan is named by its path and the identity of the file (device, inode, size, mtime and
//    ctime in ns, as stat(2) gives them; taken before the plan was read): any write to the plan
//    changes its ctime, so a changed plan is parsed. A plan in the Nix store never changes.
// What it cannot catch: a certificate forged by root with every binding right (root can write the
// slots as well), and both slots' payloads rotting on the medium while their headers stay (the
// full parse would then find no usable slot). docs/DESIGN.md "Additions and changes" says so.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/engine.hpp"
#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "core/state.hpp"

namespace bootstate {

// The certificate file's size: written whole, read whole (one read of 4 KiB).
inline constexpr std::size_t kIdleClaimSize = 4096;
inline constexpr std::uint32_t kIdleClaimVersion = 1;
// How much of the certified slot an idle run reads and compares (the header and the start of
// the payload, in the one read that the header costs anyway): damage there is noticed at once;
// damage further into the payload only by the next full parse (docs/DESIGN.md, issue #17).
inline constexpr std::size_t kSlotPrefix = 4096;

// The identity of a plan file as stat(2) sees it (following symlinks, as the plan is read).
struct PlanIdentity {
  std::string path;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const PlanIdentity&) const = default;
};
// NotFound when the file is missing; Io otherwise.
Expected<PlanIdentity> identify_plan(const std::string& path);

// The fixed header of a slot (state_codec.hpp "Slot layout"), read without its payload.
struct SlotHead {
  std::uint32_t format_version = 0;
  std::uint64_t sequence = 0;
  std::uint64_t payload_length = 0;
  std::uint32_t crc = 0;
  bool operator==(const SlotHead&) const = default;
};
// nullopt unless `bytes` start with the slot magic and hold the whole 32-byte header.
std::optional<SlotHead> parse_slot_head(std::string_view bytes);

struct IdleClaim {
  int slot = 0;
  SlotHead head;                 // of that slot, as committed
  std::uint32_t prefix_crc = 0;  // CRC32C of the slot's first kSlotPrefix bytes (or all of it)
  std::string generation;        // the generation the run worked for (booted, not a live switch)
  std::string plan_generation;  // the plan's own `generation` field (may be the initrd placeholder)
  std::string plan_digest;      // for messages and inspection; the identity is what is compared
  PlanIdentity plan;
  bool operator==(const IdleClaim&) const = default;
};

// kIdleClaimSize bytes; nullopt when the strings do not fit (no certificate is then written).
std::optional<std::string> encode_idle_claim(const IdleClaim& claim);
// The frame encode_idle_claim puts around the encoded fields: magic, version, body length,
// `body`, CRC32C over all of it, zeros up to kIdleClaimSize; nullopt when it does not fit.
// (The fuzz target frames bodies of its own with it, to reach the fields past the checksum.)
std::optional<std::string> frame_idle_claim(std::string_view body);
// Corrupt for anything but an intact certificate of version kIdleClaimVersion.
Expected<IdleClaim> decode_idle_claim(std::string_view bytes);

// What this run knows before it parses anything.
struct IdleQuery {
  Phase phase = Phase::PostActivation;
  BootFacts facts;
  PlanIdentity plan;  // of the file the run would parse
  // The generation the initrd's plan names in place of the booted one (cmd_run.cpp).
  std::string_view placeholder;
};

// The pure decision: the certificate holds for this run, given both slots' heads as they are on
// disk now. Holds only when the certified slot is the newest (the other slot's head is missing,
// unreadable or older), its head is exactly the certified one and of this build's slot format,
// the run is no live switch, the generation and the plan file are the certified ones, and the
// plan is one check_generation accepts for this phase.
// `prefix_crc` is the CRC32C of the certified slot's first kSlotPrefix bytes as read now.
bool idle_claim_holds(const IdleClaim& claim, const std::array<std::optional<SlotHead>, 2>& heads,
                      std::uint32_t prefix_crc, const IdleQuery& query);

// Reads the certificate and both slot heads through `storage`; false on anything missing,
// unreadable or not matching (the caller then loads the full state, as without a certificate).
bool idle_from_certificate(SlotStorage& storage, const IdleQuery& query);

// Writes the certificate for the newest committed state (`sequence` in `slot`, as StateStore
// says). Reads that slot's head back to bind to it. Returns false, writing nothing, when the
// slot's head does not show `sequence` or the strings do not fit; an error only when the write
// itself failed (the old certificate, if any, no longer matches or is torn: harmless).
Expected<bool> write_idle_certificate(SlotStorage& storage, int slot, std::uint64_t sequence,
                                      IdleClaim claim);

// The engine says another boot of this generation would change nothing, in every phase: for
// `state` (the committed one), reconcile commits nothing and reports nothing, next() has nothing
// to do and finish() changes nothing, asks for no boot-loader action and exits Ok. Evaluated
// with a different boot id, and with this boot's entry (counting or not) and none. False in a
// live switch (the certificate is for boots only).
bool settled_in_every_phase(const State& state, const EngineInput& input);

}  // namespace bootstate

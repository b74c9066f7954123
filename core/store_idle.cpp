// The idle certificate (store_idle.hpp): the plan file's identity, reading the certificate and
// the slot heads through the storage, writing it, and the engine check that decides whether one
// may be written. Its bytes and the pure decision: idle_claim.cpp.
#include "core/store_idle.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"

namespace bootstate {
namespace {

std::int64_t nanoseconds(const struct timespec& time) {
  return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

}  // namespace

Expected<PlanIdentity> identify_plan(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    const int error = errno;
    return make_error(error == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "stat {}: {}", path,
                      errno_text(error));
  }
  PlanIdentity identity;
  identity.path = path;
  identity.device = static_cast<std::uint64_t>(status.st_dev);
  identity.inode = static_cast<std::uint64_t>(status.st_ino);
  identity.size = static_cast<std::uint64_t>(status.st_size);
  identity.mtime_ns = nanoseconds(status.st_mtim);
  identity.ctime_ns = nanoseconds(status.st_ctim);
  return identity;
}

namespace {

// The certificate's claim; its 4 KiB buffer is freed on return, so that the slot prefix read
// next reuses it: on an idle boot every heap page touched is a page fault.
std::optional<IdleClaim> read_idle_claim(SlotStorage& storage) {
  auto bytes = storage.read_idle_certificate();
  if (!bytes || !bytes->has_value()) return std::nullopt;
  auto claim = decode_idle_claim(**bytes);
  if (!claim) return std::nullopt;
  return std::move(*claim);
}

}  // namespace

bool idle_from_certificate(SlotStorage& storage, const IdleQuery& query) {
  const std::optional<IdleClaim> claim = read_idle_claim(storage);
  if (!claim) return false;
  std::array<std::optional<SlotHead>, 2> heads;
  std::uint32_t prefix_crc = 0;
  for (int slot = 0; slot < 2; ++slot) {
    auto head = storage.read_head(slot, slot == claim->slot ? kSlotPrefix : kSlotHeaderSize);
    if (head && head->has_value() && slot == claim->slot) prefix_crc = crc32c(**head);
    // A slot that cannot be read is not known to be older: no decision from the certificate.
    if (!head) return false;
    if (head->has_value()) heads[static_cast<std::size_t>(slot)] = parse_slot_head(**head);
    if (head->has_value() && !heads[static_cast<std::size_t>(slot)] && slot != claim->slot) {
      // Something is there that is not a slot header (torn at its start): the full parse says
      // what it is; a certificate cannot vouch for what it does not know.
      return false;
    }
  }
  return idle_claim_holds(*claim, heads, prefix_crc, query);
}

Expected<bool> write_idle_certificate(SlotStorage& storage, int slot, std::uint64_t sequence,
                                      IdleClaim claim) {
  if (slot != 0 && slot != 1) return false;
  auto bytes = storage.read_head(slot, kSlotPrefix);
  if (!bytes || !bytes->has_value()) return false;
  claim.prefix_crc = crc32c(**bytes);
  auto head = parse_slot_head(**bytes);
  if (!head || head->sequence != sequence || head->format_version != kSlotFormatVersion) {
    return false;
  }
  claim.slot = slot;
  claim.head = *head;
  auto encoded = encode_idle_claim(claim);
  if (!encoded) return false;
  BOOTSTATE_TRY(storage.write_idle_certificate(*encoded));
  return true;
}

bool settled_in_every_phase(const State& state, const EngineInput& original) {
  if (original.facts.switch_attempt() || original.store_lost) return false;
  // Cheap answers first: only a complete attempt of this generation's plan, whose generation is
  // already the last good one, can be idle (reconcile counts boots of an open attempt, finish
  // fails a failed one and blesses the first boot after a live switch).
  if (!state.attempt || state.attempt->state != AttemptState::Complete ||
      state.attempt->generation != original.facts.target_generation() ||
      state.attempt->plan_digest != original.plan->digest ||
      state.last_good_generation != state.attempt->generation) {
    return false;
  }
  EngineInput input = original;
  input.facts.boot_id = original.facts.boot_id + "-another-boot";
  // This boot's entry, and none known. Not another known entry: for an attempt whose entry was
  // never known, reconcile would record it (Attempt::entry), a field no decision reads; an idle
  // run from the certificate does not (docs/DESIGN.md, issue #17). Boot counting of an entry
  // only matters while work remains or at completion, neither of which is settled.
  BootedEntry counting = original.entry;
  counting.counting = BootCounting::Active;
  const BootedEntry entries[] = {original.entry, counting, BootedEntry{}};
  for (const BootedEntry& entry : entries) {
    input.entry = entry;
    for (Phase phase : kAllPhases) {
      input.phase = phase;
      auto reconciled = reconcile(state, input);
      if (!reconciled || reconciled->changed || !reconciled->events.empty()) return false;
      auto decision = next(state, input);
      if (!decision || decision->kind != ActionKind::None) return false;
      auto end = finish(state, input);
      if (!end || end->changed || end->exit != PhaseExit::Ok || !end->boot_actions.empty()) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace bootstate

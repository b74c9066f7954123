// The idle certificate (store_idle.hpp): its bytes, the decision whether it holds, and the
// engine check that decides whether one may be written.
#include "core/store_idle.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"

namespace bootstate {
namespace {

constexpr std::string_view kClaimMagic = "BSIDLECT";

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
void put_u64(std::string& out, std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
void put_string(std::string& out, std::string_view text) {
  put_u32(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

// Reads little-endian fields front to back; any read past the end marks it failed.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    T value = 0;
    if (bytes_.size() - offset_ < sizeof(T) || failed_) {
      failed_ = true;
      return value;
    }
    for (std::size_t index = 0; index < sizeof(T); ++index) {
      value |= static_cast<T>(static_cast<unsigned char>(bytes_[offset_ + index])) << (8 * index);
    }
    offset_ += sizeof(T);
    return value;
  }
  std::string string() {
    const auto size = get<std::uint32_t>();
    if (failed_ || bytes_.size() - offset_ < size) {
      failed_ = true;
      return {};
    }
    std::string text(bytes_.substr(offset_, size));
    offset_ += size;
    return text;
  }
  bool failed() const { return failed_; }

 private:
  std::string_view bytes_;
  std::size_t offset_ = 0;
  bool failed_ = false;
};

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

std::optional<SlotHead> parse_slot_head(std::string_view bytes) {
  if (bytes.size() < kSlotHeaderSize || bytes.substr(0, kSlotMagic.size()) != kSlotMagic) {
    return std::nullopt;
  }
  Cursor cursor(bytes.substr(kSlotMagic.size(), kSlotHeaderSize - kSlotMagic.size()));
  SlotHead head;
  head.format_version = cursor.get<std::uint32_t>();
  head.sequence = cursor.get<std::uint64_t>();
  head.payload_length = cursor.get<std::uint64_t>();
  head.crc = cursor.get<std::uint32_t>();
  return head;
}

std::optional<std::string> encode_idle_claim(const IdleClaim& claim) {
  std::string body;
  put_u32(body, static_cast<std::uint32_t>(claim.slot));
  put_u32(body, claim.head.format_version);
  put_u64(body, claim.head.sequence);
  put_u64(body, claim.head.payload_length);
  put_u32(body, claim.head.crc);
  put_u32(body, claim.prefix_crc);
  put_string(body, claim.generation);
  put_string(body, claim.plan_generation);
  put_string(body, claim.plan_digest);
  put_string(body, claim.plan.path);
  put_u64(body, claim.plan.device);
  put_u64(body, claim.plan.inode);
  put_u64(body, claim.plan.size);
  put_u64(body, static_cast<std::uint64_t>(claim.plan.mtime_ns));
  put_u64(body, static_cast<std::uint64_t>(claim.plan.ctime_ns));
  // magic, version, body length, body, CRC32C over all of it; zeros up to the fixed size.
  std::string bytes(kClaimMagic);
  put_u32(bytes, kIdleClaimVersion);
  put_u32(bytes, static_cast<std::uint32_t>(body.size()));
  bytes += body;
  put_u32(bytes, crc32c(bytes));
  if (bytes.size() > kIdleClaimSize) return std::nullopt;
  bytes.resize(kIdleClaimSize, '\0');
  return bytes;
}

Expected<IdleClaim> decode_idle_claim(std::string_view bytes) {
  auto corrupt = [](std::string_view why) {
    return make_error(ErrorCode::Corrupt, "idle certificate: {}", why);
  };
  if (bytes.size() != kIdleClaimSize) return corrupt("not the size of a certificate");
  if (bytes.substr(0, kClaimMagic.size()) != kClaimMagic) return corrupt("bad magic");
  Cursor head(bytes.substr(kClaimMagic.size(), 8));
  const auto version = head.get<std::uint32_t>();
  const auto length = head.get<std::uint32_t>();
  if (version != kIdleClaimVersion) return corrupt("another version");
  const std::size_t covered = kClaimMagic.size() + 8 + std::size_t{length};
  if (covered + 4 > bytes.size()) return corrupt("length out of range");
  Cursor trailer(bytes.substr(covered, 4));
  if (trailer.get<std::uint32_t>() != crc32c(bytes.substr(0, covered))) {
    return corrupt("checksum mismatch");
  }
  Cursor cursor(bytes.substr(kClaimMagic.size() + 8, length));
  IdleClaim claim;
  claim.slot = static_cast<int>(cursor.get<std::uint32_t>());
  claim.head.format_version = cursor.get<std::uint32_t>();
  claim.head.sequence = cursor.get<std::uint64_t>();
  claim.head.payload_length = cursor.get<std::uint64_t>();
  claim.head.crc = cursor.get<std::uint32_t>();
  claim.prefix_crc = cursor.get<std::uint32_t>();
  claim.generation = cursor.string();
  claim.plan_generation = cursor.string();
  claim.plan_digest = cursor.string();
  claim.plan.path = cursor.string();
  claim.plan.device = cursor.get<std::uint64_t>();
  claim.plan.inode = cursor.get<std::uint64_t>();
  claim.plan.size = cursor.get<std::uint64_t>();
  claim.plan.mtime_ns = static_cast<std::int64_t>(cursor.get<std::uint64_t>());
  claim.plan.ctime_ns = static_cast<std::int64_t>(cursor.get<std::uint64_t>());
  if (cursor.failed() || (claim.slot != 0 && claim.slot != 1)) return corrupt("bad fields");
  return claim;
}

bool idle_claim_holds(const IdleClaim& claim, const std::array<std::optional<SlotHead>, 2>& heads,
                      std::uint32_t prefix_crc, const IdleQuery& query) {
  if (prefix_crc != claim.prefix_crc) return false;
  const BootFacts& facts = query.facts;
  if (facts.switch_attempt() || facts.booted_generation.empty()) return false;
  if (claim.generation != facts.target_generation() || !(claim.plan == query.plan)) return false;
  // check_generation (cmd_run.cpp) for the certified plan in this phase.
  const bool plan_fits =
      claim.plan_generation == facts.booted_generation ||
      (query.phase != Phase::PostActivation && claim.plan_generation == query.placeholder);
  if (!plan_fits) return false;
  const auto& mine = heads[static_cast<std::size_t>(claim.slot)];
  const auto& other = heads[static_cast<std::size_t>(1 - claim.slot)];
  if (!mine || !(*mine == claim.head) || mine->format_version != kSlotFormatVersion) return false;
  // A higher sequence in the other slot: a later commit (or one torn after its header was
  // written). Either way the full parse decides.
  return !other || other->sequence < claim.head.sequence;
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

// The idle certificate's bytes (store_idle.hpp) and the pure decision whether it holds: no
// effects here, so that the fuzz target (tests/fuzz/fuzz_idle_certificate.cpp) links only this.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"
#include "core/store_idle.hpp"

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

}  // namespace

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
  return frame_idle_claim(body);
}

std::optional<std::string> frame_idle_claim(std::string_view body) {
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

}  // namespace bootstate

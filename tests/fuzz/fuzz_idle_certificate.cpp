// libFuzzer target: the idle certificate (core/idle_claim.cpp), the file every boot reads from
// the ESP before anything else of the store, and the decision made from it.
// The input is used twice: as the certificate's bytes as they are (padded or cut to its size),
// and as the body of a certificate whose frame (magic, version, length, CRC32C) is made right, so
// that the fields are fuzzed and not only the checksum.
// Properties: a certificate that decodes re-encodes to the same bytes and decodes to the same
// claim; a claim holds only for a slot 0 or 1 whose head is exactly the certified one; the
// decision never reads outside the two heads.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/state_codec.hpp"
#include "core/store_idle.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

void check(std::string_view bytes) {
  auto claim = bootstate::decode_idle_claim(bytes);
  if (!claim) return;
  FUZZ_CHECK(claim->slot == 0 || claim->slot == 1, "a decoded claim names slot 2 or more");
  auto encoded = bootstate::encode_idle_claim(*claim);
  FUZZ_CHECK(encoded.has_value(), "a decoded claim does not fit again");
  auto again = bootstate::decode_idle_claim(*encoded);
  FUZZ_CHECK(again.has_value() && *again == *claim, "decode → encode → decode differs");
  FUZZ_CHECK(bootstate::encode_idle_claim(*again) == encoded, "encode is not stable");

  // The decision, for heads that match the claim and for heads that do not.
  bootstate::IdleQuery query;
  query.facts.boot_id = "fuzz";
  query.facts.booted_generation = claim->generation;
  query.plan = claim->plan;
  query.placeholder = "placeholder";
  std::array<std::optional<bootstate::SlotHead>, 2> heads;
  heads[static_cast<std::size_t>(claim->slot)] = claim->head;
  const bool holds = bootstate::idle_claim_holds(*claim, heads, claim->prefix_crc, query);
  FUZZ_CHECK(!holds || claim->head.format_version == bootstate::kSlotFormatVersion,
             "a claim on another slot format holds");
  // The other slot as new as the certified one: a later commit, or one torn after its header.
  heads[static_cast<std::size_t>(1 - claim->slot)] = claim->head;
  FUZZ_CHECK(!bootstate::idle_claim_holds(*claim, heads, claim->prefix_crc, query),
             "a claim holds while the other slot is as new");
  FUZZ_CHECK(!bootstate::idle_claim_holds(*claim, heads, claim->prefix_crc + 1, query),
             "a claim holds for another slot prefix");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)bootstate::parse_slot_head(input);
  check(input);
  std::string whole(input);
  whole.resize(bootstate::kIdleClaimSize, '\0');
  check(whole);
  if (auto framed = bootstate::frame_idle_claim(input)) check(*framed);
  return 0;
}

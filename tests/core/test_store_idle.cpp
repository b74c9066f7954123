// The idle certificate's bytes and its decision (core/store_idle.hpp): every binding that is off
// by one thing must make it not hold.
#include <doctest/doctest.h>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"
#include "core/store_idle.hpp"

namespace bootstate {
namespace {

IdleClaim sample_claim() {
  IdleClaim claim;
  claim.slot = 1;
  claim.head = SlotHead{kSlotFormatVersion, 7, 1000, 0xdeadbeef};
  claim.prefix_crc = 0x1234;
  claim.generation = "/nix/store/gen";
  claim.plan_generation = "/nix/store/gen";
  claim.plan_digest = "0123456789abcdef";
  claim.plan = PlanIdentity{"/nix/store/gen/bootstate/plan.json", 1, 2, 3, 4, 5};
  return claim;
}

IdleQuery sample_query() {
  IdleQuery query;
  query.phase = Phase::PostActivation;
  query.facts.boot_id = "boot";
  query.facts.booted_generation = "/nix/store/gen";
  query.plan = sample_claim().plan;
  query.placeholder = "/run/booted-system";
  return query;
}

std::array<std::optional<SlotHead>, 2> sample_heads() {
  return {SlotHead{kSlotFormatVersion, 6, 900, 1}, sample_claim().head};
}

TEST_CASE("idle certificate: encodes to 4 KiB and decodes to the same fields") {
  auto bytes = encode_idle_claim(sample_claim());
  REQUIRE(bytes);
  CHECK(bytes->size() == kIdleClaimSize);
  auto claim = decode_idle_claim(*bytes);
  REQUIRE(claim);
  CHECK(claim->head == sample_claim().head);
  CHECK(claim->prefix_crc == 0x1234u);
  CHECK(claim->plan == sample_claim().plan);
  CHECK(idle_claim_holds(*claim, sample_heads(), 0x1234, sample_query()));
}

TEST_CASE("idle certificate: any damaged byte or a short file is refused") {
  const std::string bytes = *encode_idle_claim(sample_claim());
  for (std::size_t offset : {0, 9, 16, 40, 100, 180}) {
    std::string damaged = bytes;
    damaged[offset] = static_cast<char>(damaged[offset] ^ 0x01);
    CHECK_FALSE(decode_idle_claim(damaged));
  }
  CHECK_FALSE(decode_idle_claim(bytes.substr(0, 2048)));
  CHECK_FALSE(decode_idle_claim(bytes + "x"));
}

TEST_CASE("idle certificate: does not hold when anything it is bound to differs") {
  const IdleClaim claim = sample_claim();
  CHECK(idle_claim_holds(claim, sample_heads(), 0x1234, sample_query()));
  CHECK_FALSE(idle_claim_holds(claim, sample_heads(), 0x1235, sample_query()));  // slot start

  auto heads = sample_heads();
  heads[0]->sequence = 8;  // a later commit in the other slot (or one torn after its header)
  CHECK_FALSE(idle_claim_holds(claim, heads, 0x1234, sample_query()));
  heads = sample_heads();
  heads[1]->crc ^= 1;  // the certified slot was rewritten
  CHECK_FALSE(idle_claim_holds(claim, heads, 0x1234, sample_query()));
  heads = sample_heads();
  heads[1].reset();  // the certified slot is gone
  CHECK_FALSE(idle_claim_holds(claim, heads, 0x1234, sample_query()));
  heads = sample_heads();
  heads[0].reset();  // the other slot is missing: fine
  CHECK(idle_claim_holds(claim, heads, 0x1234, sample_query()));

  IdleQuery query = sample_query();
  query.plan.ctime_ns += 1;  // the plan was written to
  CHECK_FALSE(idle_claim_holds(claim, sample_heads(), 0x1234, query));
  query = sample_query();
  query.facts.booted_generation = "/nix/store/other";
  CHECK_FALSE(idle_claim_holds(claim, sample_heads(), 0x1234, query));
  query = sample_query();
  query.facts.current_generation = "/nix/store/switched";  // a live switch
  CHECK_FALSE(idle_claim_holds(claim, sample_heads(), 0x1234, query));

  IdleClaim placeholder = claim;
  placeholder.plan_generation = "/run/booted-system";  // the initrd's plan
  CHECK_FALSE(idle_claim_holds(placeholder, sample_heads(), 0x1234, sample_query()));
  query = sample_query();
  query.phase = Phase::PreSwitchRoot;
  CHECK(idle_claim_holds(placeholder, sample_heads(), 0x1234, query));
}

TEST_CASE("idle certificate: a slot head is read only from an intact header") {
  const std::string slot = encode_slot(42, "{\"payload_version\": 1}");
  auto head = parse_slot_head(slot);
  REQUIRE(head);
  CHECK(head->sequence == 42u);
  CHECK(head->format_version == kSlotFormatVersion);
  CHECK_FALSE(parse_slot_head(slot.substr(0, 31)));
  CHECK_FALSE(parse_slot_head("NOTASLOT" + slot.substr(8)));
}

}  // namespace
}  // namespace bootstate

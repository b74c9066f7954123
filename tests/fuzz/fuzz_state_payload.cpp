// libFuzzer target: the state payload decoder (core/state_codec.cpp decode_state).
// Property: a payload that decodes survives decode → encode → decode unchanged: the second
// encoding is byte for byte the first (State has no operator==; its encoding holds every field).
// Both decoders (copying and in place) must agree, and so must the fast reader and the document
// reader. The store's layout (core/state_layout.hpp)
// of that state, laid out fresh and then again over the layout of an earlier state (whose
// records keep their places), decodes to the same state.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/crc32c.hpp"
#include "core/state_codec.hpp"
#include "core/state_layout.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  auto state = bootstate::decode_state(payload);
  std::string in_place(payload);
  auto state_in_place = bootstate::decode_state_in_place(in_place);
  FUZZ_CHECK(state.has_value() == state_in_place.has_value(),
             "the copying and the in-place decoder disagree");
  // decode_state reads with the fast reader first (state_fast_decode.hpp): the document reader
  // alone must say the same, state or error.
  auto by_document = bootstate::decode_state_by_document(payload);
  FUZZ_CHECK(state.has_value() == by_document.has_value(),
             "the fast reader and the document reader disagree");
  if (!state) {
    FUZZ_CHECK(state.error().message == by_document.error().message,
               "the fast reader and the document reader name different faults");
    return 0;
  }
  const std::string first = bootstate::encode_state(*state);
  FUZZ_CHECK(bootstate::encode_state(*by_document) == first,
             "the fast reader and the document reader read different states");
  FUZZ_CHECK(bootstate::encode_state(*state_in_place) == first,
             "the copying and the in-place decoder read different states");
  auto again = bootstate::decode_state(first);
  FUZZ_CHECK(again.has_value(), "an encoded state does not decode");
  FUZZ_CHECK(bootstate::encode_state(*again) == first,
             "decode → encode → decode changed the state");

  bootstate::PayloadLayout layout;
  bootstate::SlotFrame frame(0);
  for (int round = 0; round < 2; ++round) {
    // Round 2 lays the state out over round 1's places after changing one record: the kept
    // capacities must still give a payload that says exactly that state.
    if (round == 1 && !state->migrations.empty()) {
      state->migrations.front().message += " (changed)";
      state->migrations.back().steps.emplace_back();
    }
    frame.begin_version();
    const std::size_t end = layout.encode(*state, frame, 0);
    const std::string laid_out(frame.bytes().substr(0, end));
    FUZZ_CHECK(frame.checksum(0) == bootstate::crc32c(frame.bytes()),
               "the frame's checksum by blocks is not the checksum of its bytes");
    auto decoded = bootstate::decode_state(laid_out);
    FUZZ_CHECK(decoded.has_value(), "a laid-out state does not decode");
    FUZZ_CHECK(bootstate::encode_state(*decoded) == bootstate::encode_state(*state),
               "the layout changed the state");
  }
  return 0;
}

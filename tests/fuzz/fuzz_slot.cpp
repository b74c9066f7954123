// libFuzzer target: the slot decoder (core/state_codec.cpp decode_slot*) and the store's choice
// between two slots (core/store.cpp).
// Properties: an intact frame re-encodes to the same bytes; a load that reads the newest slot in
// pieces says what the whole reads alone say; the store, given the input split
// into two slots, either refuses (nothing written) or loads, and after a commit of what it
// loaded reads back exactly that state - the commit never lands on the slot it read from.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/interfaces.hpp"
#include "core/state_codec.hpp"
#include "core/store.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/support/pieces_reader.hpp"

namespace {

class MemorySlots : public bootstate::SlotStorage {
 public:
  std::optional<std::string> slots[2];
  int writes = 0;
  int moves = 0;

  bootstate::Expected<std::optional<std::string>> read(int slot) override { return slots[slot]; }
  bootstate::Expected<void> write(int slot, std::string_view bytes) override {
    ++writes;
    slots[slot] = std::string(bytes);
    return {};
  }
  bootstate::Expected<void> move_aside() override {
    ++moves;
    slots[0].reset();
    slots[1].reset();
    return {};
  }
  std::string describe() const override { return "memory"; }
  // 0: the default reader (the slot in one piece); else pieces of this many bytes.
  std::size_t piece = 0;
  // Heads cannot be read: a load takes the whole reads alone (store.cpp's full decision).
  bool heads_fail = false;
  bootstate::Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) override {
    if (heads_fail) return bootstate::make_error(bootstate::ErrorCode::Io, "no heads");
    return SlotStorage::read_head(slot, bytes);
  }
  bootstate::Expected<std::unique_ptr<Reader>> open_reader(int slot) override {
    if (piece == 0 || !slots[slot]) return SlotStorage::open_reader(slot);
    return std::unique_ptr<Reader>(
        std::make_unique<bootstate::testing::PiecesReader>(*slots[slot], piece));
  }
};

// What a load says, for comparing two loads: the error, or the state, sequence and warnings.
std::string outcome(const bootstate::Expected<bootstate::LoadResult>& loaded) {
  if (!loaded) return "error " + loaded.error().message;
  std::string text =
      std::to_string(loaded->sequence) + " " + bootstate::encode_state(loaded->state);
  for (const std::string& warning : loaded->warnings) text += "\n" + warning;
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  // The whole input as one slot.
  auto frame = bootstate::decode_slot_frame(bytes);
  auto owned = bootstate::decode_owned_slot_frame(std::string(bytes));
  FUZZ_CHECK(frame.has_value() == owned.has_value(), "the two frame decoders disagree");
  if (frame) {
    FUZZ_CHECK(frame->payload == owned->payload, "the two frame decoders read different payloads");
    if (frame->format_version == bootstate::kSlotFormatVersion) {
      FUZZ_CHECK(bootstate::encode_slot(frame->sequence, frame->payload) == bytes,
                 "an intact slot re-encodes to other bytes");
    }
  }
  (void)bootstate::decode_slot(bytes);

  // The input as two slots: the first byte says where it is cut and which slots exist.
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string_view rest = bytes.substr(1);
  const std::size_t cut = rest.size() * (control >> 2) / 63;
  MemorySlots storage;
  if (control & 1) storage.slots[0] = std::string(rest.substr(0, cut));
  if (control & 2) storage.slots[1] = std::string(rest.substr(cut));
  const auto before_0 = storage.slots[0];
  const auto before_1 = storage.slots[1];
  // The newest slot read in pieces (of 1 to 64 bytes) and the whole reads alone load the same,
  // warnings included (read-only: nothing is moved aside).
  MemorySlots pieces;
  pieces.slots[0] = storage.slots[0];
  pieces.slots[1] = storage.slots[1];
  pieces.piece = 1 + (size > 1 ? data[size - 1] % 64 : 0);
  MemorySlots whole = pieces;
  whole.heads_fail = true;
  bootstate::StateStore by_pieces(pieces);
  bootstate::StateStore by_whole(whole);
  FUZZ_CHECK(outcome(by_pieces.load(bootstate::LoadMode::ReadOnly)) ==
                 outcome(by_whole.load(bootstate::LoadMode::ReadOnly)),
             "a load in pieces and a load by whole reads differ");

  bootstate::StateStore store(storage);
  auto loaded = store.load();
  if (!loaded) {
    FUZZ_CHECK(storage.writes == 0 && storage.moves == 0, "a refused load wrote");
    FUZZ_CHECK(storage.slots[0] == before_0 && storage.slots[1] == before_1,
               "a refused load changed a slot");
    return 0;
  }
  const std::string encoded = bootstate::encode_state(loaded->state);
  const std::uint64_t sequence = loaded->sequence;
  FUZZ_CHECK(store.commit(loaded->state).has_value(), "a commit to memory failed");
  FUZZ_CHECK(store.sequence() == sequence + 1, "a commit did not advance the sequence");
  bootstate::StateStore reread(storage);
  auto after = reread.load();
  FUZZ_CHECK(after.has_value(), "the store does not load what it committed");
  FUZZ_CHECK(after->sequence == sequence + 1, "the committed sequence is not the newest");
  FUZZ_CHECK(bootstate::encode_state(after->state) == encoded, "the committed state changed");
  return 0;
}

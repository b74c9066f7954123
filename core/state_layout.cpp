#include "core/state_layout.hpp"

#include <string_view>
#include <utility>

#include "core/state_codec.hpp"

namespace bootstate {
namespace {

constexpr std::string_view kHead = "{\n\"payload_version\": 1,\n\"migrations\": [";
constexpr std::string_view kFirstSeparator = "\n";
constexpr std::string_view kSeparator = ",\n";
constexpr std::string_view kArrayEnd = "\n],";

}  // namespace

std::size_t PayloadLayout::capacity_for(std::size_t length) {
  constexpr std::size_t kStep = 64;
  const std::size_t wanted = length + std::max<std::size_t>(length / 8, kStep);
  return (wanted + kStep - 1) / kStep * kStep;
}

PayloadLayout::Placed PayloadLayout::take(std::size_t index, const std::string& id,
                                          std::unordered_map<std::string, std::size_t>& by_id) {
  if (index < placed_.size() && placed_[index].record.id == id) {
    return std::move(placed_[index]);
  }
  // Out of line (a record was forgotten or inserted): index the rest once, by id.
  if (by_id.empty()) {
    for (std::size_t other = 0; other < placed_.size(); ++other) {
      by_id.try_emplace(placed_[other].record.id, other);
    }
  }
  const auto found = by_id.find(id);
  if (found == by_id.end() || placed_[found->second].text.empty()) return {};
  return std::move(placed_[found->second]);
}

std::size_t PayloadLayout::encode(const State& state, SlotFrame& frame, std::size_t at) {
  static_assert(kPayloadVersion == 1, "kHead spells the payload version");
  const bool same_frame = frame_ == &frame && at_ == at;
  std::vector<Placed> placed;
  placed.reserve(state.migrations.size());
  std::unordered_map<std::string, std::size_t> by_id;
  std::size_t offset = at;
  frame.put(offset, kHead);
  offset += kHead.size();
  for (std::size_t index = 0; index < state.migrations.size(); ++index) {
    const MigrationRecord& record = state.migrations[index];
    Placed piece = take(index, record.id, by_id);
    bool unchanged = !piece.text.empty() && piece.record == record;
    if (!unchanged) {
      piece.text = encode_migration(record);
      piece.record = record;
    }
    const bool first = index == 0;
    const std::string_view separator = first ? kFirstSeparator : kSeparator;
    const std::size_t length = separator.size() + piece.text.size();
    const std::size_t old_capacity = piece.capacity;
    if (piece.capacity < length) piece.capacity = capacity_for(length);
    const bool in_place = unchanged && same_frame && piece.offset == offset &&
                          piece.capacity == old_capacity && piece.first == first;
    if (!in_place) {
      frame.put(offset, separator);
      frame.put(offset + separator.size(), piece.text);
      frame.fill(offset + length, piece.capacity - length, ' ');
    }
    piece.offset = offset;
    piece.first = first;
    offset += piece.capacity;
    placed.push_back(std::move(piece));
  }
  frame.put(offset, kArrayEnd);
  offset += kArrayEnd.size();
  const std::string rest = encode_state_except_migrations(state);
  const std::string_view members = std::string_view(rest).substr(1);  // `"attempt": …}`
  frame.put(offset, members);
  offset += members.size();
  placed_ = std::move(placed);
  frame_ = &frame;
  at_ = at;
  return offset;
}

}  // namespace bootstate

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

void PayloadLayout::align(const std::vector<MigrationRecord>& records) {
  // Usually the same ids in the same order, some appended: every record keeps its place.
  bool in_line = placed_.size() <= records.size();
  for (std::size_t index = 0; in_line && index < placed_.size(); ++index) {
    in_line = placed_[index].record.id == records[index].id;
  }
  if (in_line) {
    placed_.resize(records.size());
    return;
  }
  // A record was forgotten, inserted or moved: look each up by id (the first of two records
  // with one id, in a damaged state, keeps the place; the second is placed anew).
  std::unordered_map<std::string, std::size_t> by_id;
  for (std::size_t index = 0; index < placed_.size(); ++index) {
    by_id.try_emplace(placed_[index].record.id, index);
  }
  std::vector<Placed> aligned(records.size());
  std::vector<bool> taken(placed_.size(), false);
  for (std::size_t index = 0; index < records.size(); ++index) {
    const auto found = by_id.find(records[index].id);
    if (found == by_id.end() || taken[found->second]) continue;
    taken[found->second] = true;
    aligned[index] = std::move(placed_[found->second]);
  }
  placed_ = std::move(aligned);
}

std::size_t PayloadLayout::encode(const State& state, SlotFrame& frame, std::size_t at) {
  static_assert(kPayloadVersion == 1, "kHead spells the payload version");
  const bool same_frame = frame_ == &frame && at_ == at;
  align(state.migrations);
  std::size_t offset = at;
  frame.put(offset, kHead);
  offset += kHead.size();
  for (std::size_t index = 0; index < state.migrations.size(); ++index) {
    const MigrationRecord& record = state.migrations[index];
    Placed& piece = placed_[index];
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
  }
  frame.put(offset, kArrayEnd);
  offset += kArrayEnd.size();
  const std::string rest = encode_state_except_migrations(state);
  const std::string_view members = std::string_view(rest).substr(1);  // `"attempt": …}`
  frame.put(offset, members);
  offset += members.size();
  frame_ = &frame;
  at_ = at;
  return offset;
}

}  // namespace bootstate

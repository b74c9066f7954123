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

void PayloadLayout::encode(const State& state, std::string& out) {
  static_assert(kPayloadVersion == 1, "kHead spells the payload version");
  std::vector<Placed> placed;
  placed.reserve(state.migrations.size());
  std::unordered_map<std::string, std::size_t> by_id;
  out.append(kHead);
  for (std::size_t index = 0; index < state.migrations.size(); ++index) {
    const MigrationRecord& record = state.migrations[index];
    Placed piece = take(index, record.id, by_id);
    if (piece.text.empty() || !(piece.record == record)) {
      piece.text = encode_migration(record);
      piece.record = record;
    }
    const std::string_view separator = index == 0 ? kFirstSeparator : kSeparator;
    const std::size_t length = separator.size() + piece.text.size();
    if (piece.capacity < length) piece.capacity = capacity_for(length);
    out.append(separator);
    out.append(piece.text);
    out.append(piece.capacity - length, ' ');
    placed.push_back(std::move(piece));
  }
  out.append(kArrayEnd);
  const std::string rest = encode_state_except_migrations(state);
  out.append(std::string_view(rest).substr(1));  // without its '{': `"attempt": …}`
  placed_ = std::move(placed);
}

}  // namespace bootstate

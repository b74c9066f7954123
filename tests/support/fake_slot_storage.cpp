#include "tests/support/fake_slot_storage.hpp"

#include <algorithm>

namespace bootstate::testing {

bool FakeSlotStorage::valid(int slot) {
  if (slot == 0 || slot == 1) return true;
  ++misuses_;
  return false;
}

Expected<std::optional<std::string>> FakeSlotStorage::contents(int slot) {
  if (!valid(slot)) {
    return make_error(ErrorCode::InvalidInput, "fake slot storage: slot {} does not exist", slot);
  }
  if (slot == failing_read_slot_) {
    return make_error(ErrorCode::Io, "read memory slot {}: Input/output error", slot);
  }
  return slots_[static_cast<std::size_t>(slot)];
}

Expected<std::optional<std::string>> FakeSlotStorage::read(int slot) {
  auto bytes = contents(slot);
  if (bytes) ++reads_[static_cast<std::size_t>(slot)];
  return bytes;
}

Expected<std::optional<std::string>> FakeSlotStorage::read_head(int slot, std::size_t bytes) {
  auto head = contents(slot);
  if (head && head->has_value() && (*head)->size() > bytes) (*head)->resize(bytes);
  return head;
}

Expected<void> FakeSlotStorage::write(int slot, std::string_view bytes) {
  if (!valid(slot)) {
    return make_error(ErrorCode::InvalidInput, "fake slot storage: slot {} does not exist", slot);
  }
  ++writes_;
  written_slots_.push_back(slot);
  auto& contents = slots_[static_cast<std::size_t>(slot)];
  if (writes_ == fail_at_) {
    return make_error(ErrorCode::Io, "write memory slot {}: No space left on device", slot);
  }
  if (writes_ == tear_at_) {
    const std::size_t keep = std::min(tear_keep_, bytes.size());
    std::string torn(bytes.substr(0, keep));
    if (tear_mode_ == TearMode::OverOld && contents && contents->size() > keep) {
      torn.append(contents->substr(keep));
    }
    contents = std::move(torn);
    return make_error(ErrorCode::Io, "write memory slot {}: power cut after {} bytes", slot, keep);
  }
  contents = std::string(bytes);
  return {};
}

Expected<void> FakeSlotStorage::move_aside() {
  ++move_asides_;
  for (int slot = 0; slot < 2; ++slot) {
    auto& contents = slots_[static_cast<std::size_t>(slot)];
    if (contents) broken_.emplace_back(slot, std::move(*contents));
    contents.reset();
  }
  return {};
}

}  // namespace bootstate::testing

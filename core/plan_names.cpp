// The words of the plan format and their enums, in one place so the parser, status and preview
// print exactly what the plan accepts.
#include "core/name_table.hpp"

#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate {
namespace {

constexpr NameTable<Phase, 3> kPhaseNames{{
    {Phase::InitrdPreMount, "initrd-pre-mount"},
    {Phase::PreSwitchRoot, "pre-switch-root"},
    {Phase::PostActivation, "post-activation"},
}};

constexpr NameTable<Policy, 3> kPolicyNames{{
    {Policy::Required, "required"},
    {Policy::Recommended, "recommended"},
    {Policy::Optional, "optional"},
}};

constexpr NameTable<StepKind, 3> kStepKindNames{{
    {StepKind::Command, "command"},
    {StepKind::Storage, "storage"},
    {StepKind::Firmware, "firmware"},
}};

constexpr NameTable<StorageOpKind, 6> kStorageOpNames{{
    {StorageOpKind::GrowPartition, "grow-partition"},
    {StorageOpKind::AddPartition, "add-partition"},
    {StorageOpKind::SetPartitionName, "set-partition-name"},
    {StorageOpKind::SetPartitionType, "set-partition-type"},
    {StorageOpKind::SetPartitionAttrs, "set-partition-attrs"},
    {StorageOpKind::Require, "require"},
}};

}  // namespace

std::string_view to_string(Phase phase) {
  return name_of(kPhaseNames, phase);
}
std::optional<Phase> parse_phase(std::string_view text) {
  return value_of(kPhaseNames, text);
}
bool root_mounted(Phase phase) {
  return phase != Phase::InitrdPreMount;
}

std::string_view to_string(Policy policy) {
  return name_of(kPolicyNames, policy);
}
std::optional<Policy> parse_policy(std::string_view text) {
  return value_of(kPolicyNames, text);
}

std::string_view to_string(StepKind kind) {
  return name_of(kStepKindNames, kind);
}
std::optional<StepKind> parse_step_kind(std::string_view text) {
  return value_of(kStepKindNames, text);
}

std::string_view to_string(StorageOpKind kind) {
  return name_of(kStorageOpNames, kind);
}
std::optional<StorageOpKind> parse_storage_op_kind(std::string_view text) {
  return value_of(kStorageOpNames, text);
}

bool Migration::has_firmware_step() const {
  for (const Step& step : steps) {
    if (step.kind == StepKind::Firmware) return true;
  }
  return false;
}

const Migration* Plan::find(std::string_view id) const {
  if (!index.empty()) {
    auto found = index.find(id);
    return found == index.end() ? nullptr : &migrations[found->second];
  }
  for (const Migration& migration : migrations) {
    if (migration.id == id) return &migration;
  }
  return nullptr;
}

void TextDigest::add(std::string_view text) {
  std::uint64_t hash = hash_;
  for (unsigned char byte : text) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  hash_ = hash;
}

void TextDigest::add_also_to(std::string_view text, TextDigest& other) {
  std::uint64_t hash = hash_;
  std::uint64_t other_hash = other.hash_;
  for (unsigned char byte : text) {
    hash = (hash ^ byte) * 0x100000001b3ULL;
    other_hash = (other_hash ^ byte) * 0x100000001b3ULL;
  }
  hash_ = hash;
  other.hash_ = other_hash;
}

std::string TextDigest::hex() const {
  return fmt::format("{:016x}", hash_);
}

std::string text_digest(std::string_view text) {
  TextDigest digest;
  digest.add(text);
  return digest.hex();
}

}  // namespace bootstate

namespace bootstate {

std::string_view to_string(BootCounting counting) {
  switch (counting) {
    case BootCounting::Active:
      return "active";
    case BootCounting::Off:
      return "off";
    case BootCounting::Impossible:
      return "impossible";
  }
  return "invalid";
}

}  // namespace bootstate

// Enum ↔ word tables: the words of the plan format and of the persisted state are written once,
// as constexpr tables, and both directions are looked up in the same table.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace bootstate {

template <typename Enum, std::size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

template <typename Enum, std::size_t N>
std::string_view name_of(const NameTable<Enum, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "invalid";
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const NameTable<Enum, N>& table, std::string_view text) {
  for (const auto& [value, name] : table) {
    if (name == text) return value;
  }
  return std::nullopt;
}

}  // namespace bootstate

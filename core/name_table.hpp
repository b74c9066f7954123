// Enum ↔ word tables: the words of the plan format and of the persisted state are written once,
// as constexpr tables, and both directions are looked up in the same table. The words are kept
// in the table (InlineText), not pointed to: no table here is relocated at start-up.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "core/inline_text.hpp"

namespace bootstate {

// The longest word is "initrd-pre-mount" (16).
using TableWord = InlineText<23>;

template <typename Enum, std::size_t N>
using NameTable = std::array<std::pair<Enum, TableWord>, N>;

// The table's own storage: `table` must outlive what this returns (the tables are static).
template <typename Enum, std::size_t N>
std::string_view name_of(const NameTable<Enum, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name.view();
  }
  return "invalid";
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const NameTable<Enum, N>& table, std::string_view text) {
  for (const auto& [value, name] : table) {
    if (name.view() == text) return value;
  }
  return std::nullopt;
}

}  // namespace bootstate

// The firmware's variable store as efivarfs shows it, under a --root tree:
// <root>/sys/firmware/efi/efivars/NAME-GUID = 4-byte little-endian attributes + payload.
//
// Written independently of bootloader/efivars.* on purpose (see sdboot.hpp). The simulator
// also plays the firmware's reboot: volatile variables (no NON_VOLATILE bit) vanish.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace bootsim {

using bootstate::Expected;

inline constexpr std::string_view kLoaderGuid = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
inline constexpr std::uint32_t kNonVolatile = 0x01;
// What systemd-boot's efivar_set(…, 0) gives: BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
inline constexpr std::uint32_t kVolatileAttrs = 0x06;
// efivar_set(…, EFI_VARIABLE_NON_VOLATILE), and what the OS writes (systemd, bootstate).
inline constexpr std::uint32_t kNonVolatileAttrs = 0x07;

// UTF-8 → UTF-16LE with a terminating NUL (what systemd-boot stores for strings).
std::string utf16le_with_nul(std::string_view utf8);
// UTF-16LE → UTF-8, ending at the first NUL; nullopt for an odd length or invalid UTF-16.
std::optional<std::string> utf16le_to_utf8(std::string_view payload);

class EfiVars {
 public:
  explicit EfiVars(std::string root);

  const std::string& directory() const { return dir_; }
  std::string path(std::string_view name) const;

  Expected<void> set_raw(std::string_view name, std::string_view payload, std::uint32_t attrs);
  Expected<void> set_string(std::string_view name, std::string_view value, std::uint32_t attrs);
  // The payload without the attribute word; nullopt when absent.
  Expected<std::optional<std::string>> get_raw(std::string_view name) const;
  // A string variable; nullopt when absent; Corrupt when not a UTF-16 string.
  Expected<std::optional<std::string>> get_string(std::string_view name) const;
  Expected<void> remove(std::string_view name);

  // A reboot: every variable without the NON_VOLATILE attribute disappears.
  Expected<int> drop_volatile();

 private:
  std::string dir_;
};

}  // namespace bootsim

// EFI variables through efivarfs files, re-rooted under --root.
//
// A variable NAME of vendor GUID G is the file <root>/sys/firmware/efi/efivars/NAME-G. Its
// contents are a 4-byte little-endian attribute word followed by the payload; the loader
// interface's strings are UTF-16LE, NUL-terminated when systemd writes them. The same code runs
// against the kernel's efivarfs and against plain files in a test tree; where they behave
// differently (immutable flag, truncation) the .cpp says how both are handled.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace bootstate {

// Vendor GUID of the Boot Loader Interface (systemd-boot's variables).
inline constexpr std::string_view kLoaderVendorGuid = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, what systemd uses for variables it sets.
inline constexpr std::uint32_t kEfiVariableAttributes = 0x07;

// The bytes of an efivarfs file holding `text` as a NUL-terminated UTF-16LE string.
// InvalidInput when `text` is not valid UTF-8.
Expected<std::string> encode_efi_string_file(std::string_view text,
                                             std::uint32_t attributes = kEfiVariableAttributes);

// A UTF-16LE payload (without the attribute word) as UTF-8, ending at the first NUL or at the
// end of the payload (systemd-boot writes the NUL; other writers may not). Corrupt when the
// length is odd or the UTF-16 is invalid.
Expected<std::string> decode_efi_string(std::string_view payload);

class EfiVariables {
 public:
  // `root` is "/" on a real machine or the --root directory.
  explicit EfiVariables(std::string root);

  // <root>/sys/firmware/efi/efivars
  const std::string& directory() const { return directory_; }
  // Whether <root>/sys/firmware/efi exists, i.e. the kernel was booted through EFI.
  bool efi_booted() const;
  // Mounts efivarfs on directory() when the machine booted through EFI and nothing is mounted
  // there yet. systemd mounts it in the initrd only when the module was loaded in time; without
  // it an initrd phase could neither see the boot counter nor mark the entry bad. It stays
  // mounted for the rest of the boot, as systemd's would.
  Expected<void> mount_if_missing() const;
  // The file that holds `name`.
  std::string path(std::string_view name, std::string_view vendor = kLoaderVendorGuid) const;

  // The payload (attribute word stripped); nullopt when the variable does not exist. Corrupt
  // when the file is shorter than the attribute word.
  Expected<std::optional<std::string>> read(std::string_view name,
                                            std::string_view vendor = kLoaderVendorGuid) const;
  // The payload decoded as a UTF-16LE string; nullopt when the variable does not exist.
  Expected<std::optional<std::string>> read_string(
      std::string_view name, std::string_view vendor = kLoaderVendorGuid) const;
  // A little-endian 64-bit payload (LoaderFeatures); Corrupt when it is not 8 bytes.
  Expected<std::optional<std::uint64_t>> read_u64(
      std::string_view name, std::string_view vendor = kLoaderVendorGuid) const;

  // Creates or replaces the variable with `payload` in one write(2), as efivarfs requires.
  // Clears the immutable flag first (newer kernels set it on variables not on their list) and
  // restores it afterwards.
  Expected<void> write(std::string_view name, std::string_view payload,
                       std::uint32_t attributes = kEfiVariableAttributes,
                       std::string_view vendor = kLoaderVendorGuid);
  // write() of `text` as a NUL-terminated UTF-16LE string.
  Expected<void> write_string(std::string_view name, std::string_view text,
                              std::string_view vendor = kLoaderVendorGuid);
  // Deletes the variable. Missing is success.
  Expected<void> remove(std::string_view name, std::string_view vendor = kLoaderVendorGuid);

 private:
  std::string root_;
  std::string directory_;
};

}  // namespace bootstate

// The firmware half of one simulated boot: what OVMF and systemd-boot do between power-on and
// the kernel's first instruction, applied to a --root tree, plus the kernel's own per-boot
// files (/proc/cmdline, boot_id) and the tmpfs that a reboot empties (/run).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tests/bootsim/sdboot.hpp"

namespace bootsim {

using bootstate::Expected;

struct LoaderOptions {
  std::string root;           // the tree
  std::string esp = "/boot";  // the ESP's mount point inside the tree
  // The XBOOTLDR partition's mount point inside the tree, empty when entries are on the ESP.
  // With it, entries, kernels and LoaderBootCountPath are on (relative to) $BOOT; loader.conf
  // stays on the ESP, as nixpkgs' xbootldrMountPoint lays them out.
  std::string boot;
  LoaderVersion version = LoaderVersion::V252;
  std::string part_uuid = "6b1c5f4e-2a7d-4e1b-9c3e-5d8f0a1b2c3d";  // LoaderDevicePartUUID
};

// <root><esp>, <root><esp>/loader/entries
std::string esp_dir(const LoaderOptions& options);
// <root><boot>, or the ESP without XBOOTLDR: where entries and their kernels are.
std::string boot_dir(const LoaderOptions& options);
std::string entries_dir(const LoaderOptions& options);

// Every entry systemd-boot would show, in its menu order (sorted, unusable files skipped:
// see parse_entry; an entry whose `linux`/`efi` file is missing on the ESP is skipped too).
Expected<std::vector<Entry>> load_entries(const LoaderOptions& options);

struct FirmwareBoot {
  std::vector<std::string> menu;  // entry file names in sort order, as found
  std::string file_before;        // the chosen entry's file name as read
  std::string file_after;         // ...after the boot-counting rename (same without counter)
  std::string selected_id;        // LoaderEntrySelected
  ChosenBy chosen_by = ChosenBy::FirstEntry;
  std::optional<std::string> one_shot;         // LoaderEntryOneShot found (and consumed)
  std::optional<std::string> boot_count_path;  // LoaderBootCountPath set for this boot
  std::string options;                         // the kernel command line
  std::string generation;                      // directory of init= (empty when the entry has none)
  std::string boot_id;
};

// Power-on to kernel: volatile variables and /run vanish, systemd-boot exports its variables,
// reads loader.conf and the entries, consumes the one-shot, chooses, renames a counted entry,
// and the kernel gets a fresh boot id and the entry's command line. NotFound when there is no
// entry to boot ("No loader found").
Expected<FirmwareBoot> firmware_boot(const LoaderOptions& options);

// The directory of the last absolute init= on a command line that ends in "/init".
std::string init_generation(const std::string& options);

}  // namespace bootsim

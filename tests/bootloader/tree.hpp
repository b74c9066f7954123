// A throwaway --root tree for bootloader tests: efivarfs files, an ESP with entries, and the
// few /proc and /run files SystemdBoot reads. Removed when the test ends.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bootstate::test {

class Tree {
 public:
  Tree();
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
  ~Tree();

  const std::string& root() const { return root_; }
  // <root>/boot, the ESP as the constructor of SystemdBoot gets it.
  std::string esp() const { return root_ + "/boot"; }
  std::string entries_dir() const { return esp() + "/loader/entries"; }

  // Writes `contents` to <root>/<relative>, creating directories.
  void write(std::string_view relative, std::string_view contents) const;
  std::optional<std::string> read(std::string_view relative) const;
  bool exists(std::string_view relative) const;

  // Creates <root>/sys/firmware/efi/efivars (an EFI boot).
  void make_efi() const;
  // Sets a loader variable the way systemd-boot does (attributes + NUL-terminated UTF-16LE).
  void set_loader_var(std::string_view name, std::string_view value) const;
  // The raw bytes of a loader variable file, nullopt when absent.
  std::optional<std::string> loader_var_bytes(std::string_view name) const;

  // $ESP/loader/entries/<file_name> booting `generation` (init=<generation>/init).
  void add_entry(std::string_view file_name, std::string_view generation) const;
  // File names in $ESP/loader/entries, sorted.
  std::vector<std::string> entry_files() const;
  // File names in <root>/<relative>, sorted (empty when it does not exist).
  std::vector<std::string> files_in(std::string_view relative) const;
  // A unified kernel image at <root>/<relative> built like ukify does it: objcopy adds .osrel,
  // .cmdline (`cmdline`) and a dummy .linux onto systemd's EFI stub. False (with `why`) when
  // the stub or objcopy is missing.
  bool add_uki(std::string_view relative, std::string_view cmdline, std::string& why) const;

 private:
  std::string root_;
};

// "nixos-abc+2-1.conf" etc. with efivarfs bytes spelled out: attributes 7, UTF-16LE, NUL.
std::string efivar_bytes(std::string_view ascii);

}  // namespace bootstate::test

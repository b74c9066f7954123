// BootLoader for systemd-boot: boot counting through entry file names and the Boot Loader
// Interface's EFI variables.
//
// Where entries are (Boot Loader Specification): Type #1 entries in loader/entries/*.conf and
// Type #2 entries (unified kernel images) in EFI/Linux/*.efi, each on the ESP and, when there is
// one, on the XBOOTLDR partition ($BOOT; nixpkgs' `boot.loader.systemd-boot.xbootldrMountPoint`
// puts NixOS' entries there). systemd-boot reports paths relative to the partition it read the
// entry from, without saying which one, so both are searched. bootstate's own state stays on
// the ESP.
//
// What systemd-boot tells the OS (and how versions differ):
//  - LoaderEntrySelected: the id of the booted entry. systemd-boot ≤ 257 uses the file name as
//    it read it, counter included and lowercased ("nixos-abc+3-0.conf"); later versions strip
//    the counter ("nixos-abc.conf"). Both are accepted.
//  - LoaderBootCountPath: set only when the entry had a counter and the loader renamed it for
//    this boot: the file as it is after that rename ("\loader\entries\nixos-abc+2-1.conf").
// bootstate renames entries itself (mark bad, re-arm, mark good), so "the booted entry's file"
// is searched for by id; the file LoaderBootCountPath names is preferred when it still exists.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bootloader/efivars.hpp"
#include "bootloader/entry_name.hpp"
#include "core/interfaces.hpp"

namespace bootstate {

// LoaderBootCountPath parsed: the directory relative to the ESP ("loader/entries") and the
// file name in it. InvalidInput for a path that is not absolute, not normalized, or whose file
// name has no counter (systemd-bless-boot refuses the same).
struct BootCountPath {
  std::string directory;
  std::string file_name;
  EntryName name;
};
Expected<BootCountPath> parse_boot_count_path(std::string_view value);

// Everything booted_entry() looks at, gathered first so the decision is a pure function.
struct LoaderSnapshot {
  bool efi_booted = false;    // <root>/sys/firmware/efi exists
  bool in_container = false;  // <root>/run/systemd/container exists (systemd writes it)
  std::optional<std::string> entry_selected;      // LoaderEntrySelected
  std::optional<std::string> boot_count_path;     // LoaderBootCountPath
  std::optional<std::string> current_file;        // the booted entry's file as it is now, if found
  std::string directory;                          // where it was looked for ("loader/entries")
  std::optional<std::string> cmdline_generation;  // init= on the kernel's command line
  std::optional<std::string> entry_generation;    // init= on the booted entry's options line
};

// Pure: Active (the entry has a counter this boot), Off (booted by systemd-boot, no counter),
// Impossible (no loader variables, a container, or a kernel command line that is not the
// entry's, which is what a kexec or an edited command line looks like).
BootedEntry decide_booted_entry(const LoaderSnapshot& snapshot);

// Names of the LoaderFeatures bits known to bootstate (systemd's efi-loader-features.h),
// in bit order; unknown bits as "bit N".
std::vector<std::string> loader_feature_names(std::uint64_t features);

// Read-only view for `bootstate status`. Absent variables are nullopt.
struct LoaderStatus {
  std::optional<std::string> info;              // LoaderInfo ("systemd-boot 252.38-1~deb12u1")
  std::optional<std::string> entry_selected;    // LoaderEntrySelected
  std::optional<std::string> boot_count_path;   // LoaderBootCountPath
  std::optional<std::string> entry_default;     // LoaderEntryDefault (set by bootctl)
  std::optional<std::string> entry_one_shot;    // LoaderEntryOneShot (pending, not yet used)
  std::optional<std::string> device_part_uuid;  // LoaderDevicePartUUID (the ESP's PARTUUID)
  std::optional<std::uint64_t> features;        // LoaderFeatures bitmask
  std::vector<std::string> feature_names;       // loader_feature_names(features)
  LoaderConf loader_conf;                       // $ESP/loader/loader.conf, empty when absent
};

// One entry file on the ESP or $BOOT.
struct EntryInfo {
  std::string directory;  // relative to its partition: "loader/entries" or "EFI/Linux"
  std::string file_name;  // "nixos-abc+2-1.conf"
  EntryName name;
  // init= of the `options` lines (Type #1) or of the UKI's .cmdline section (Type #2); nullopt
  // when there is none, or the UKI is not a PE image bootstate can read.
  std::optional<std::string> generation;
  std::string partition;  // absolute path of the partition holding it (the ESP or $BOOT)
};

// Pure: the tries a re-armed entry gets when bootstate was not told
// (boot.loader.systemd-boot.bootCounting.tries is not on the machine). The builder writes new
// entries as NAME+TRIES and systemd-boot keeps LEFT+DONE == TRIES, so the largest LEFT+DONE of
// an entry still counting is the configured value. Without one: nixpkgs' default (3), or the
// DONE of a bad entry (+0-DONE) when larger (systemd-boot exhausted more tries than that).
inline constexpr int kNixpkgsDefaultTries = 3;
// LEFT + DONE of a counter, saturated at INT_MAX (names may carry values up to INT_MAX each).
int counter_total(int left, int done);
int tries_from_entries(const std::vector<EntryInfo>& entries);

class SystemdBoot final : public BootLoader {
 public:
  // `root`: "/" or the --root directory (efivars and /run are read below it).
  // `esp_path`: the mounted ESP, absolute and already including `root`.
  // `tries`: the counter a re-armed entry gets (boot.loader.systemd-boot.bootCounting.tries),
  // or kTriesAsBooted: as many as the booted entry started this boot with (LEFT + DONE).
  // `kernel_generation`: the toplevel of init= on the running kernel's command line, as in
  // BootFacts::booted_generation (the caller has read /proc/cmdline already), empty when there
  // is none; a booted entry whose init= names another one means kexec (Impossible).
  // `boot_path`: the mounted XBOOTLDR partition ($BOOT), absolute and including `root`; empty
  // (or the ESP) when entries are on the ESP only.
  static constexpr int kTriesAsBooted = 0;
  SystemdBoot(std::string root, std::string esp_path, int tries, std::string kernel_generation,
              std::string boot_path = "");

  // From LoaderEntrySelected/LoaderBootCountPath and the entry files now; see
  // decide_booted_entry(). Error only when a variable or directory cannot be read.
  Expected<BootedEntry> booted_entry() override;
  // The id of the Type #1 entry whose options line boots `generation` (a toplevel path;
  // a trailing "/" is ignored). When several do, the one without a bad counter and with the
  // highest file name; nullopt when none does.
  Expected<std::optional<std::string>> entry_for_generation(std::string_view generation) override;
  // Booted entry file → ID+0-DONE. Unsupported unless counting is Active.
  Expected<void> mark_bad() override;
  // Booted entry file → ID+TRIES-0. Unsupported unless counting is Active.
  Expected<void> rearm() override;
  // Booted entry file → ID. Success when it already is (also after systemd-bless-boot renamed
  // it) and when counting is Off (an entry without counter is good). Unsupported when
  // Impossible.
  Expected<void> mark_good() override;
  // LoaderEntryOneShot for entry `entry_id` ("nixos-abc", or "nixos-abc.conf"); NotFound when
  // no such entry file exists. The value written depends on the loader; see the .cpp.
  Expected<void> set_one_shot(std::string_view entry_id) override;
  // Every entry of `generation` named bad (+0-DONE) → NAME+TRIES-0, TRIES as the constructor's
  // `tries`, or tries_from_entries() with kTriesAsBooted. Returns the new file names.
  Expected<std::vector<std::string>> rearm_generation(std::string_view generation) override;

  // $BOOT found only when it is needed, by `finder` (the partition's path, empty when there is
  // none), instead of the constructor's `boot_path`: in the initrd, finding it means probing
  // every disk for an XBOOTLDR partition and mounting it, which a boot whose entry is on the ESP
  // (and an idle run) must not pay. Called at most once: when the booted entry has no file on
  // the ESP, or when every entry is listed (entries(): status, retry, a fallback's one-shot).
  void find_boot_with(std::function<std::string()> finder) { boot_finder_ = std::move(finder); }

  Expected<LoaderStatus> loader_status() const;
  // Every entry in loader/entries and EFI/Linux of the ESP, then of $BOOT, each directory in
  // file-name order.
  Expected<std::vector<EntryInfo>> entries() const;

 private:
  struct Booted;
  Expected<Booted> locate_booted() const;
  Expected<void> find_variants(const std::string& relative, Booted& booted) const;
  Expected<void> rename_booted(std::string_view verb, bool requires_active,
                               EntryName (*target)(const EntryName&, int done, int tries));
  Expected<bool> loader_ids_keep_counter() const;
  std::string esp_dir(std::string_view relative) const;
  // The ESP, then $BOOT when it is another directory.
  std::vector<std::string> partitions() const;
  // $BOOT when it is another directory than the ESP; `find`: may run the finder to know.
  std::optional<std::string> boot_partition(bool find) const;

  std::string root_;
  std::string esp_;
  mutable std::string boot_;
  mutable std::function<std::string()> boot_finder_;
  int tries_;
  std::optional<std::string> kernel_generation_;
  EfiVariables efivars_;
};

}  // namespace bootstate

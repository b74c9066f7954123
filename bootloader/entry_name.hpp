// Pure parsing and composing of boot loader entry names and the few lines of entry files and
// loader.conf that bootstate reads. No I/O here: systemd_boot.cpp does the renames.
//
// Names follow the Boot Loader Specification's boot counting as systemd-boot implements it
// (src/boot/boot.c, boot_entry_parse_tries): the counter is "+LEFT[-DONE]" after the LAST '+'
// of the name and directly before the suffix (".conf" for Type #1 entries, ".efi" for UKIs in
// $ESP/EFI/Linux). When what follows the last '+' is not exactly such a counter, there is no
// counter and the '+' is part of the id ("foo+bar.conf" has the id "foo+bar").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bootstate {

// The boot counter of an entry name. tries_done is nullopt when the name omits "-DONE"
// ("nixos-abc+3.conf"); systemd-boot then counts it as 0, and composing keeps it omitted so a
// name round-trips byte for byte.
struct EntryCounter {
  int tries_left = 0;
  std::optional<int> tries_done;

  int done_or_zero() const { return tries_done.value_or(0); }
  bool operator==(const EntryCounter&) const = default;
};

struct EntryName {
  std::string id;      // without counter and suffix: "nixos-abc123"
  std::string suffix;  // ".conf" or ".efi", spelled as in the file name
  std::optional<EntryCounter> counter;

  bool operator==(const EntryName&) const = default;
};

// Parses a file name ("nixos-abc+2-1.conf"). nullopt when it does not end in ".conf" or ".efi"
// (case-insensitive, as systemd-boot compares) or when the id would be empty.
std::optional<EntryName> parse_entry_name(std::string_view file_name);

// The file name for `name`: id + ("+LEFT" ["-DONE"]) + suffix.
std::string compose_entry_name(const EntryName& name);

// The name systemd-bless-boot gives a good boot: the counter dropped ("nixos-abc.conf").
EntryName good_entry_name(const EntryName& name);

// The name systemd-bless-boot gives a bad boot: no tries left, tries done kept ("+0-DONE";
// "+0" when DONE is 0, exactly as bless-boot's make_bad() spells it). `done` is the number of
// tries done to keep; callers pass the counter of the file as it is now.
EntryName bad_entry_name(const EntryName& name, int done);

// A re-armed entry: `tries` left and none done ("nixos-abc+3-0.conf"), so the boot loader tries
// it again that many times.
EntryName rearmed_entry_name(const EntryName& name, int tries);

// Entry ids compared as systemd-boot does: it lowercases ids before matching, and FAT names are
// case-insensitive.
bool same_entry_id(std::string_view a, std::string_view b);

// The generation (toplevel store path) an entry boots: the directory of `init=` on its `options`
// lines (systemd-boot joins several `options` lines with a space; the kernel uses the last
// `init=`). nullopt when there is no absolute init= ending in "/init".
std::optional<std::string> entry_generation(std::string_view entry_file_text);

// The same for a kernel command line (/proc/cmdline).
std::optional<std::string> cmdline_generation(std::string_view cmdline);

// The two loader.conf keys bootstate looks at (in `status`): the `default` pattern (a glob over
// entry ids) and `timeout` (seconds or menu-force/menu-hidden/menu-disabled), as written.
struct LoaderConf {
  std::optional<std::string> default_pattern;
  std::optional<std::string> timeout;
};

// Parses loader.conf text: "key value" lines, '#' comments, the last occurrence of a key wins
// (as systemd-boot's config_defaults_load_from_file overwrites).
LoaderConf parse_loader_conf(std::string_view text);

}  // namespace bootstate

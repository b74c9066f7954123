// An independent model of systemd-boot 252's entry handling, written from reading
// src/boot/efi/boot.c (config_entry_add_type1, config_entry_parse_tries, config_entry_compare,
// config_default_entry_select, config_entry_bump_counters, save_selected_entry) and
// src/fundamental/string-util-fundamental.c (strverscmp_improved).
//
// Why a second implementation next to bootloader/: the simulator has to catch bugs in
// bootstate's boot-loader code, so it must not share that code. Everything here is pure (no
// I/O); firmware.cpp applies the decisions to a --root tree.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bootsim {

// Which systemd-boot behaviour to reproduce where versions differ: 252 (Debian 12) reports the
// entry id with its counter ("nixos-abc+3-0.conf"), 257 and later without ("nixos-abc.conf").
enum class LoaderVersion { V252, V257 };

// strverscmp_improved(): <0, 0, >0 like strcmp, "newer" compares greater. Empty or absent
// strings compare as plain strcmp (absent < anything).
int version_compare(const std::optional<std::string>& a, const std::optional<std::string>& b);

// The "+LEFT[-DONE]" counter between the LAST '+' of a file name and its suffix.
struct Counter {
  int left = 0;
  int done = 0;
  bool done_written = false;   // "-DONE" present in the name (systemd treats missing as 0)
  std::size_t prefix_len = 0;  // bytes before the '+'
};
// nullopt when the name has no '+', the digits do not parse, or something other than the
// suffix follows the counter ("a+1x.conf" has no counter), as config_entry_parse_tries decides.
std::optional<Counter> parse_counter(std::string_view file_name, std::string_view suffix);

// The name systemd-boot renames a counted entry to before booting it: LEFT-1 (never below 0)
// and DONE+1, e.g. "a+3-0.conf" → "a+2-1.conf", "a+3.conf" → "a+2-1.conf", and a bad
// "a+0-3.conf" → "a+0-4.conf" (boot.c renames bad entries too when they are booted).
std::string next_counter_name(std::string_view file_name, const Counter& counter,
                              std::string_view suffix);

// loader.conf as systemd-boot reads it: "key value" lines split at the first blank, '#'
// comments, the last occurrence wins. Only the keys that choose an entry are kept.
struct LoaderConf {
  std::optional<std::string> default_pattern;  // lowercased, as config_load_defaults does
  std::optional<std::string> timeout;
};
LoaderConf parse_loader_conf(std::string_view text);

// One Type #1 entry ($ESP/loader/entries/NAME.conf).
struct Entry {
  std::string file_name;  // as on disk ("nixos-abc+3-0.conf")
  std::string id;         // what systemd-boot calls it (lowercased; see entry_id())
  std::optional<std::string> title, version, sort_key, machine_id, linux_path, efi;
  std::string options;  // all `options` lines joined with a blank
  std::vector<std::string> initrd;
  std::optional<Counter> counter;
  int tries_left() const { return counter ? counter->left : -1; }
  int tries_done() const { return counter ? counter->done : -1; }
};

// The id systemd-boot gives the entry: the lowercased file name; 257 drops the counter.
std::string entry_id(std::string_view file_name, LoaderVersion version);

// Parses an entry file. nullopt when systemd-boot would skip it: not ".conf"
// (case-insensitive), a name starting with "." or "auto-", no `linux`/`efi` line, or an
// `architecture` other than x64. (The existence of the kernel file is checked by the caller.)
std::optional<Entry> parse_entry(std::string_view file_name, std::string_view text,
                                 LoaderVersion version);

// config_entry_compare(): true when `a` sorts before `b`. Entries with no tries left go last;
// then sort-key (both present) / machine-id / version descending; then id descending; then
// more tries left first and fewer tries done first.
bool entry_before(const Entry& a, const Entry& b);
void sort_entries(std::vector<Entry>& entries);

// glob match of a pattern against an id, as efi_fnmatch (*, ?, [..], \ escapes).
bool pattern_matches(std::string_view pattern, std::string_view id);

// What the firmware-side variables say before the choice.
struct SelectionInput {
  std::optional<std::string> one_shot;       // LoaderEntryOneShot (consumed by the boot)
  std::optional<std::string> entry_default;  // LoaderEntryDefault (set by bootctl set-default)
  std::optional<std::string> last_booted;    // LoaderEntryLastBooted (for "@saved")
  LoaderConf conf;
};

enum class ChosenBy { OneShot, DefaultVariable, SavedEntry, DefaultPattern, FirstEntry };
std::string_view to_string(ChosenBy by);

struct Selection {
  std::size_t index = 0;  // into the sorted entries
  ChosenBy by = ChosenBy::FirstEntry;
};

// config_default_entry_select() over sorted entries: the one-shot pattern, else the
// LoaderEntryDefault pattern (or the saved entry for "@saved"), else loader.conf's `default`
// pattern, else the first entry; each pattern picks the first match in sort order. nullopt
// when there are no entries.
std::optional<Selection> select_entry(const std::vector<Entry>& sorted, const SelectionInput& in);

// systemd-bless-boot good, decided from which files exist: LoaderBootCountPath's file (or its
// bad "+0[-DONE]" form) is renamed to the counter-less name; if only the good name exists the
// operation "was already executed"; if none exists it fails.
enum class BlessOutcome { Renamed, RenamedFromBad, AlreadyGood, Gone, NoCounter };
std::string_view to_string(BlessOutcome outcome);

struct BlessPlan {
  std::string source;      // file name in the entries directory
  std::string bad_source;  // the bad form of the same entry
  std::string target;      // the good name
};
// From LoaderBootCountPath's last component; nullopt when it carries no counter
// (bless-boot refuses it).
std::optional<BlessPlan> plan_bless(std::string_view boot_count_file);

}  // namespace bootsim

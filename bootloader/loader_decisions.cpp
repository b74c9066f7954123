// The pure decisions behind SystemdBoot: parsing LoaderBootCountPath, classifying the boot from
// a snapshot of the loader's variables, naming LoaderFeatures bits. No I/O here.
#include <algorithm>
#include <climits>

#include "bootloader/systemd_boot.hpp"
#include "core/inline_text.hpp"

namespace bootstate {
namespace {

std::string strip_trailing_slashes(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

// InlineText: a table of pointers would be relocated at every start (core/inline_text.hpp).
constexpr InlineText<23> kFeatureNames[] = {
    "config-timeout",    "config-timeout-one-shot",
    "entry-default",     "entry-one-shot",
    "boot-counting",     "xbootldr",
    "random-seed",       "load-driver",
    "sort-key",          "saved-entry",
    "devicetree",        "secureboot-enroll",
    "retain-shim",       "menu-disable",
    "multi-profile-uki",
};

}  // namespace

Expected<BootCountPath> parse_boot_count_path(std::string_view value) {
  std::string path(value);
  std::replace(path.begin(), path.end(), '\\', '/');
  if (!path.starts_with('/')) {
    return make_error(ErrorCode::InvalidInput, "LoaderBootCountPath \"{}\" is not absolute", value);
  }
  std::vector<std::string_view> parts;
  std::string_view rest = std::string_view(path).substr(1);
  while (true) {
    const auto slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") {
      return make_error(ErrorCode::InvalidInput, "LoaderBootCountPath \"{}\" is not normalized",
                        value);
    }
    parts.push_back(part);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  BootCountPath result;
  result.file_name = std::string(parts.back());
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (i > 0) result.directory += '/';
    result.directory += parts[i];
  }
  auto name = parse_entry_name(result.file_name);
  if (!name || !name->counter) {
    return make_error(ErrorCode::InvalidInput,
                      "LoaderBootCountPath \"{}\" names no entry file with a counter", value);
  }
  result.name = std::move(*name);
  return result;
}

BootedEntry decide_booted_entry(const LoaderSnapshot& s) {
  BootedEntry entry;
  if (s.in_container) {
    entry.why = "running in a container (/run/systemd/container exists)";
    return entry;
  }
  if (!s.efi_booted) {
    entry.why = "not booted through EFI (no /sys/firmware/efi)";
    return entry;
  }
  if (!s.entry_selected) {
    entry.why = "no LoaderEntrySelected EFI variable: not started by systemd-boot";
    return entry;
  }
  const auto selected = parse_entry_name(*s.entry_selected);
  if (!selected) {
    entry.why =
        fmt::format("LoaderEntrySelected \"{}\" is not a boot entry file", *s.entry_selected);
    return entry;
  }
  entry.id = selected->id;
  if (s.cmdline_generation && s.entry_generation &&
      strip_trailing_slashes(*s.cmdline_generation) !=
          strip_trailing_slashes(*s.entry_generation)) {
    entry.why = fmt::format(
        "the kernel command line boots {} but entry \"{}\" boots {} (kexec or an edited command "
        "line)",
        *s.cmdline_generation, entry.id, *s.entry_generation);
    return entry;
  }
  if (!s.boot_count_path) {
    entry.counting = BootCounting::Off;
    entry.why = selected->counter ? fmt::format(
                                        "systemd-boot did not count this boot of \"{}\" (no "
                                        "LoaderBootCountPath variable: its rename failed?)",
                                        *s.entry_selected)
                                  : fmt::format(
                                        "entry \"{}\" has no boot counter (no LoaderBootCountPath "
                                        "variable)",
                                        *s.entry_selected);
    return entry;
  }
  auto count_path = parse_boot_count_path(*s.boot_count_path);
  if (!count_path) {
    entry.counting = BootCounting::Off;
    entry.why = count_path.error().message;
    return entry;
  }
  // The counter file is authoritative for the id: LoaderEntrySelected is lowercased.
  entry.id = count_path->name.id;
  entry.counting = BootCounting::Active;
  const auto current = s.current_file ? parse_entry_name(*s.current_file) : std::nullopt;
  if (!current) {
    entry.tries_left = count_path->name.counter->tries_left;
    entry.tries_done = count_path->name.counter->done_or_zero();
    entry.why = fmt::format("no single current file of entry \"{}\" in $ESP/{}; counter from {}",
                            entry.id, s.directory, *s.boot_count_path);
  } else if (current->counter) {
    entry.tries_left = current->counter->tries_left;
    entry.tries_done = current->counter->done_or_zero();
  } else {
    entry.why = fmt::format("entry already marked good ({})", *s.current_file);
  }
  return entry;
}

int counter_total(int left, int done) {
  const long long total = static_cast<long long>(left) + done;
  return static_cast<int>(std::min<long long>(total, INT_MAX));
}

int tries_from_entries(const std::vector<EntryInfo>& entries) {
  int counting = 0;
  int bad_done = 0;
  for (const EntryInfo& info : entries) {
    if (!info.name.counter) continue;
    const EntryCounter& counter = *info.name.counter;
    if (counter.tries_left == 0) {
      bad_done = std::max(bad_done, counter.done_or_zero());
    } else {
      counting = std::max(counting, counter_total(counter.tries_left, counter.done_or_zero()));
    }
  }
  if (counting > 0) return counting;
  return std::max(kNixpkgsDefaultTries, bad_done);
}

std::vector<std::string> loader_feature_names(std::uint64_t features) {
  std::vector<std::string> names;
  for (unsigned bit = 0; bit < 64; ++bit) {
    if ((features & (std::uint64_t{1} << bit)) == 0) continue;
    names.push_back(bit < std::size(kFeatureNames) ? std::string(kFeatureNames[bit].view())
                                                   : fmt::format("bit {}", bit));
  }
  return names;
}

}  // namespace bootstate

#include "bootloader/systemd_boot.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "bootloader/entry_dir.hpp"
#include "bootloader/pe_sections.hpp"
#include "core/paths.hpp"
#include "core/read_file.hpp"

namespace bootstate {
namespace {

constexpr std::string_view kEntriesDir = "loader/entries";
constexpr std::string_view kUkiDir = "EFI/Linux";

// systemd-boot stopped putting the counter into entry ids (systemd PR #38897, "boot: Strip
// boot counter from entry id", released with v258). Used only when this boot gives no evidence.
constexpr int kFirstLoaderWithoutCounterInIds = 258;

std::string directory_for_suffix(std::string_view suffix) {
  return std::string(same_entry_id(suffix, ".efi") ? kUkiDir : kEntriesDir);
}

std::string strip_trailing_slashes(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

// The generation an entry file boots: init= on a Type #1 entry's options lines, or on a UKI's
// .cmdline. A UKI bootstate cannot parse (not PE, section out of bounds) boots no known
// generation rather than failing every listing; an unreadable file is an error.
Expected<std::optional<std::string>> file_generation(const std::string& path,
                                                     std::string_view suffix) {
  if (same_entry_id(suffix, ".efi")) {
    auto cmdline = read_uki_cmdline(path);
    if (!cmdline) {
      if (cmdline.error().code == ErrorCode::InvalidInput) return std::optional<std::string>();
      return cmdline.error();
    }
    if (!*cmdline) return std::optional<std::string>();
    return cmdline_generation(**cmdline);
  }
  auto text = read_file(path);
  if (!text) return text.error();
  return entry_generation(*text);
}

}  // namespace

// What locate_booted() found: the decision plus where the booted entry's files are.
struct SystemdBoot::Booted {
  BootedEntry entry;
  std::string directory;  // absolute: the partition holding the entry, then the relative path
  EntryName key;          // id and suffix of the booted entry
  std::optional<std::string> count_path_file;
  int count_path_done = 0;
  int count_path_total = 0;  // LEFT + DONE of LoaderBootCountPath: the tries this boot began with
  std::vector<EntryFile> variants;
};

SystemdBoot::SystemdBoot(std::string root, std::string esp_path, int tries,
                         std::string kernel_generation, std::string boot_path)
    : root_(std::move(root)),
      esp_(std::move(esp_path)),
      boot_(std::move(boot_path)),
      tries_(tries),
      kernel_generation_(kernel_generation.empty()
                             ? std::nullopt
                             : std::optional<std::string>(std::move(kernel_generation))),
      efivars_(root_) {}

std::string SystemdBoot::esp_dir(std::string_view relative) const {
  return path_join(esp_, relative);
}

std::optional<std::string> SystemdBoot::boot_partition(bool find) const {
  if (boot_finder_ && find) {
    boot_ = boot_finder_();
    boot_finder_ = nullptr;
  }
  if (boot_.empty() || strip_trailing_slashes(boot_) == strip_trailing_slashes(esp_)) {
    return std::nullopt;
  }
  return boot_;
}

std::vector<std::string> SystemdBoot::partitions() const {
  std::vector<std::string> result{esp_};
  if (auto boot = boot_partition(true)) result.push_back(std::move(*boot));
  return result;
}

Expected<SystemdBoot::Booted> SystemdBoot::locate_booted() const {
  Booted booted;
  LoaderSnapshot s;
  s.efi_booted = efivars_.efi_booted();
  s.in_container = ::access(path_join(root_, "run/systemd/container").c_str(), F_OK) == 0;
  if (!s.in_container && s.efi_booted) {
    auto selected = efivars_.read_string("LoaderEntrySelected");
    if (!selected) return selected.error();
    auto count_path = efivars_.read_string("LoaderBootCountPath");
    if (!count_path) return count_path.error();
    s.entry_selected = std::move(*selected);
    s.boot_count_path = std::move(*count_path);
  }
  std::optional<EntryName> key;
  if (s.boot_count_path) {
    if (auto parsed = parse_boot_count_path(*s.boot_count_path)) {
      s.directory = parsed->directory;
      booted.count_path_file = parsed->file_name;
      booted.count_path_done = parsed->name.counter->done_or_zero();
      booted.count_path_total =
          counter_total(parsed->name.counter->tries_left, booted.count_path_done);
      key = parsed->name;
    }
  }
  if (!key && s.entry_selected) {
    key = parse_entry_name(*s.entry_selected);
    if (key) s.directory = directory_for_suffix(key->suffix);
  }
  if (key) {
    booted.key = *key;
    BOOTSTATE_TRY(find_variants(s.directory, booted));
    auto current =
        choose_current_file(booted.variants, booted.count_path_file, key->id, booted.directory);
    if (current) {
      s.current_file = current->file_name;
      auto generation = file_generation(booted.directory + "/" + current->file_name, key->suffix);
      if (!generation) return generation.error();
      s.entry_generation = std::move(*generation);
    }
  }
  s.cmdline_generation = kernel_generation_;
  booted.entry = decide_booted_entry(s);
  return booted;
}

// The booted entry's files in `relative` of the ESP or of $BOOT. systemd-boot's paths do not
// say which partition; the entry's files are on one of them. Files on both (a copy left behind
// when xbootldrMountPoint was turned on) are taken from the one holding the file systemd-boot
// reported, and refused when that does not decide. A $BOOT still to be found (find_boot_with)
// is looked for only when the ESP does not decide: none of the entry's files there, or not
// the one systemd-boot reported.
Expected<void> SystemdBoot::find_variants(const std::string& relative, Booted& booted) const {
  booted.directory = path_join(esp_, relative);
  bool found = false;
  bool found_reported = false;
  auto consider = [&](const std::string& partition) -> Expected<void> {
    const std::string directory = path_join(partition, relative);
    auto files = list_entry_files(directory);
    if (!files) return files.error();
    auto variants = entry_variants(*files, booted.key.id, booted.key.suffix);
    if (variants.empty()) return {};
    bool has_reported = false;
    for (const auto& file : variants) {
      has_reported = has_reported || (booted.count_path_file == file.file_name);
    }
    if (found && (found_reported || !has_reported)) {
      if (found_reported) return {};
      return make_error(ErrorCode::Failed,
                        "entry \"{}\" has files in {} and in {}; refusing to guess which one "
                        "the boot loader uses",
                        booted.key.id, booted.directory, directory);
    }
    found = true;
    found_reported = has_reported;
    booted.directory = directory;
    booted.variants = std::move(variants);
    return {};
  };
  BOOTSTATE_TRY(consider(esp_));
  const bool esp_decides = found && (found_reported || !booted.count_path_file);
  if (auto boot = boot_partition(!esp_decides)) BOOTSTATE_TRY(consider(*boot));
  return {};
}

Expected<BootedEntry> SystemdBoot::booted_entry() {
  auto booted = locate_booted();
  if (!booted) return booted.error();
  return booted->entry;
}

Expected<void> SystemdBoot::rename_booted(std::string_view verb, bool requires_active,
                                          EntryName (*target)(const EntryName&, int, int)) {
  auto booted = locate_booted();
  if (!booted) return booted.error();
  const BootedEntry& entry = booted->entry;
  if (entry.counting == BootCounting::Impossible) {
    return make_error(ErrorCode::Unsupported, "cannot {} the booted entry: {}", verb, entry.why);
  }
  if (entry.counting == BootCounting::Off) {
    if (!requires_active) return {};
    return make_error(ErrorCode::Unsupported, "cannot {} entry \"{}\": {}", verb, entry.id,
                      entry.why);
  }
  auto current = choose_current_file(booted->variants, booted->count_path_file, booted->key.id,
                                     booted->directory);
  if (!current) return current.error().with_context(fmt::format("{} {}", verb, entry.id));
  const int done =
      current->name.counter ? current->name.counter->done_or_zero() : booted->count_path_done;
  // systemd-boot's rename keeps LEFT + DONE, so LoaderBootCountPath's counter says what the
  // boot started with even after bootstate renamed the file (marked bad, say).
  const int as_booted = booted->count_path_total > 0
                            ? booted->count_path_total
                            : counter_total(entry.tries_left, entry.tries_done);
  const int tries = tries_ != kTriesAsBooted ? tries_ : std::max(1, as_booted);
  const std::string to = compose_entry_name(target(current->name, done, tries));
  for (const auto& other : booted->variants) {
    if (other.file_name == to && other.file_name != current->file_name) {
      return make_error(ErrorCode::Failed, "cannot {} {}/{}: {} exists already", verb,
                        booted->directory, current->file_name, to);
    }
  }
  auto renamed = rename_entry_file(booted->directory, current->file_name, to);
  if (!renamed) return renamed.error().with_context(fmt::format("{} {}", verb, entry.id));
  return {};
}

Expected<std::vector<std::string>> SystemdBoot::rearm_generation(std::string_view generation) {
  const std::string wanted = strip_trailing_slashes(generation);
  auto all = entries();
  if (!all) return all.error();
  const int tries = tries_ != kTriesAsBooted ? tries_ : tries_from_entries(*all);
  std::vector<std::string> rearmed;
  for (const EntryInfo& info : *all) {
    if (!info.generation || strip_trailing_slashes(*info.generation) != wanted) continue;
    if (!info.name.counter || info.name.counter->tries_left != 0) continue;
    const std::string directory = path_join(info.partition, info.directory);
    const std::string to = compose_entry_name(rearmed_entry_name(info.name, tries));
    auto renamed = rename_entry_file(directory, info.file_name, to);
    if (!renamed) {
      return renamed.error().with_context(fmt::format("re-arming the entry of {}", wanted));
    }
    rearmed.push_back(to);
  }
  return rearmed;
}

Expected<void> SystemdBoot::mark_bad() {
  return rename_booted("mark bad", true, [](const EntryName& name, int done, int) {
    return bad_entry_name(name, done);
  });
}

Expected<void> SystemdBoot::rearm() {
  return rename_booted("re-arm", true, [](const EntryName& name, int, int tries) {
    return rearmed_entry_name(name, tries);
  });
}

Expected<void> SystemdBoot::mark_good() {
  return rename_booted("mark good", false,
                       [](const EntryName& name, int, int) { return good_entry_name(name); });
}

Expected<std::optional<std::string>> SystemdBoot::entry_for_generation(
    std::string_view generation) {
  const std::string wanted = strip_trailing_slashes(generation);
  auto all = entries();
  if (!all) return all.error();
  const EntryInfo* best = nullptr;
  for (const auto& info : *all) {
    if (!info.generation || strip_trailing_slashes(*info.generation) != wanted) continue;
    const bool bad = info.name.counter && info.name.counter->tries_left == 0;
    const bool best_bad = best && best->name.counter && best->name.counter->tries_left == 0;
    // entries() is sorted by file name, so a later match has the higher name.
    if (!best || best_bad || !bad) best = &info;
  }
  if (!best) return std::optional<std::string>();
  return std::optional<std::string>(best->name.id);
}

// Whether this systemd-boot matches LoaderEntryOneShot against ids that still carry the
// counter. The booted entry is the best evidence: with a counter in effect, its
// LoaderEntrySelected shows which form the loader uses. Otherwise LoaderInfo's version decides.
Expected<bool> SystemdBoot::loader_ids_keep_counter() const {
  auto selected = efivars_.read_string("LoaderEntrySelected");
  if (!selected) return selected.error();
  auto count_path = efivars_.read_string("LoaderBootCountPath");
  if (!count_path) return count_path.error();
  if (*selected && *count_path) {
    if (auto name = parse_entry_name(**selected)) return name->counter.has_value();
  }
  auto info = efivars_.read_string("LoaderInfo");
  if (!info) return info.error();
  constexpr std::string_view kPrefix = "systemd-boot ";
  if (*info && (*info)->starts_with(kPrefix)) {
    const std::string_view version = std::string_view(**info).substr(kPrefix.size());
    int major = 0;
    const auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), major);
    if (ec == std::errc{} && end != version.data()) return major < kFirstLoaderWithoutCounterInIds;
  }
  return false;
}

// systemd-boot reads LoaderEntryOneShot once, deletes it, lowercases it and uses it as a glob
// over entry ids (config_find_entry → efi_fnmatch). The id of a Type #1 entry is its file name
// including ".conf": with the counter on loaders before v258 ("nixos-abc+2-1.conf" as it is on
// disk at the next boot), without it since ("nixos-abc.conf"). bootctl set-oneshot writes the
// same strings. Entries without a counter have the same id either way.
Expected<void> SystemdBoot::set_one_shot(std::string_view entry_id) {
  std::string id(entry_id);
  std::string suffix;
  if (auto parsed = parse_entry_name(entry_id); parsed && !parsed->counter) {
    id = parsed->id;
    suffix = parsed->suffix;
  }
  auto all = entries();
  if (!all) return all.error();
  std::vector<EntryFile> variants;
  std::string directory;
  for (const auto& info : *all) {
    if (!same_entry_id(info.name.id, id)) continue;
    if (!suffix.empty() && !same_entry_id(info.name.suffix, suffix)) continue;
    variants.push_back({info.file_name, info.name});
    directory = path_join(info.partition, info.directory);
  }
  if (variants.empty()) {
    std::string where;
    for (const auto& partition : partitions()) where += (where.empty() ? "" : " or ") + partition;
    return make_error(ErrorCode::NotFound,
                      "cannot set LoaderEntryOneShot: no entry \"{}\" in {}/ or {}/ of {}",
                      entry_id, kEntriesDir, kUkiDir, where);
  }
  auto current = choose_current_file(variants, std::nullopt, id, directory);
  if (!current) return current.error().with_context("setting LoaderEntryOneShot");
  auto keep_counter = loader_ids_keep_counter();
  if (!keep_counter) return keep_counter.error();
  const std::string value =
      *keep_counter ? current->file_name : compose_entry_name(good_entry_name(current->name));
  return efivars_.write_string("LoaderEntryOneShot", value);
}

Expected<LoaderStatus> SystemdBoot::loader_status() const {
  LoaderStatus status;
  const std::pair<std::string_view, std::optional<std::string>*> strings[] = {
      {"LoaderInfo", &status.info},
      {"LoaderEntrySelected", &status.entry_selected},
      {"LoaderBootCountPath", &status.boot_count_path},
      {"LoaderEntryDefault", &status.entry_default},
      {"LoaderEntryOneShot", &status.entry_one_shot},
      {"LoaderDevicePartUUID", &status.device_part_uuid},
  };
  for (const auto& [name, field] : strings) {
    auto value = efivars_.read_string(name);
    if (!value) return value.error();
    *field = std::move(*value);
  }
  auto features = efivars_.read_u64("LoaderFeatures");
  if (!features) return features.error();
  status.features = *features;
  if (*features) status.feature_names = loader_feature_names(**features);
  const std::string conf = esp_dir("loader/loader.conf");
  if (::access(conf.c_str(), F_OK) == 0) {
    auto text = read_file(conf);
    if (!text) return text.error();
    status.loader_conf = parse_loader_conf(*text);
  }
  return status;
}

Expected<std::vector<EntryInfo>> SystemdBoot::entries() const {
  std::vector<EntryInfo> result;
  for (const std::string& partition : partitions()) {
    for (const std::string_view relative : {kEntriesDir, kUkiDir}) {
      const std::string directory = path_join(partition, relative);
      auto files = list_entry_files(directory);
      if (!files) return files.error();
      for (auto& file : *files) {
        const std::string_view wanted_suffix = relative == kEntriesDir ? ".conf" : ".efi";
        if (!same_entry_id(file.name.suffix, wanted_suffix)) continue;
        auto generation = file_generation(directory + "/" + file.file_name, file.name.suffix);
        if (!generation) return generation.error();
        result.push_back(EntryInfo{std::string(relative), file.file_name, file.name,
                                   std::move(*generation), partition});
      }
    }
  }
  return result;
}

}  // namespace bootstate

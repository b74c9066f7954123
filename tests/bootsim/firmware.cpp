#include "tests/bootsim/firmware.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/bootsim/efivarfs.hpp"

namespace bootsim {
namespace fs = std::filesystem;
using bootstate::ErrorCode;
using bootstate::make_error;

namespace {

// LoaderFeatures systemd-boot 252 announces: config timeout, one-shot timeout, entry default,
// entry one-shot, boot counting, xbootldr, random seed, load driver, sort key, saved entry,
// devicetree (bits 0..10).
constexpr std::uint64_t kLoaderFeatures = 0x7ff;

Expected<std::string> read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return make_error(ErrorCode::Io, "open {}: {}", file.string(), bootstate::errno_text(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Expected<void> write_text(const fs::path& file, const std::string& text) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    return make_error(ErrorCode::Io, "write {}: {}", file.string(), bootstate::errno_text(errno));
  return {};
}

// A random version-4 UUID in the kernel's boot_id format.
std::string random_uuid() {
  std::random_device device;
  std::uniform_int_distribution<int> nibble(0, 15);
  std::string uuid;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) uuid.push_back('-');
    int value = nibble(device);
    if (i == 12) value = 4;
    if (i == 16) value = 8 | (value & 3);
    uuid.push_back(kHex[value]);
  }
  return uuid;
}

// An ESP path from an entry ("/EFI/nixos/x.efi" or "\EFI\nixos\x.efi") under the ESP dir.
fs::path on_esp(const LoaderOptions& options, std::string path) {
  std::replace(path.begin(), path.end(), '\\', '/');
  while (path.starts_with('/')) path.erase(0, 1);
  return fs::path(boot_dir(options)) / path;
}

// A reboot empties the tmpfs at /run.
Expected<void> clear_run(const std::string& root) {
  std::error_code ec;
  const fs::path run = fs::path(root) / "run";
  if (!fs::exists(run, ec)) return {};
  for (const auto& item : fs::directory_iterator(run, ec)) fs::remove_all(item.path(), ec);
  if (ec) return make_error(ErrorCode::Io, "empty {}: {}", run.string(), ec.message());
  return {};
}

}  // namespace

std::string esp_dir(const LoaderOptions& options) {
  return options.root + options.esp;
}
std::string boot_dir(const LoaderOptions& options) {
  return options.boot.empty() ? esp_dir(options) : options.root + options.boot;
}
std::string entries_dir(const LoaderOptions& options) {
  return boot_dir(options) + "/loader/entries";
}

std::string init_generation(const std::string& options) {
  std::istringstream words(options);
  std::string word;
  std::string generation;
  while (words >> word) {
    if (!word.starts_with("init=")) continue;
    const std::string init = word.substr(5);
    if (init.starts_with('/') && init.size() > 5 && init.ends_with("/init")) {
      generation = init.substr(0, init.size() - 5);
    }
  }
  return generation;
}

Expected<std::vector<Entry>> load_entries(const LoaderOptions& options) {
  std::vector<Entry> entries;
  std::error_code ec;
  const fs::path dir = entries_dir(options);
  if (!fs::is_directory(dir, ec)) return entries;
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    if (item.is_regular_file()) names.push_back(item.path().filename().string());
  }
  if (ec) return make_error(ErrorCode::Io, "list {}: {}", dir.string(), ec.message());
  // FAT lists in creation order; sorting by name makes the simulator deterministic.
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto text = read_text(dir / name);
    if (!text) return text.error();
    auto entry = parse_entry(name, *text, options.version);
    if (!entry) continue;
    // systemd-boot skips an entry whose kernel (or EFI binary) is not on the ESP.
    if (!fs::is_regular_file(on_esp(options, entry->linux_path ? *entry->linux_path : *entry->efi),
                             ec)) {
      continue;
    }
    entries.push_back(std::move(*entry));
  }
  sort_entries(entries);
  return entries;
}

Expected<FirmwareBoot> firmware_boot(const LoaderOptions& options) {
  EfiVars vars(options.root);
  if (auto dropped = vars.drop_volatile(); !dropped) return dropped.error();
  if (auto cleared = clear_run(options.root); !cleared) return cleared.error();

  // export_variables(): before the configuration is read.
  const std::string info = options.version == LoaderVersion::V252 ? "systemd-boot 252.38-1~deb12u1"
                                                                  : "systemd-boot 257.9";
  std::string features;
  for (int shift = 0; shift < 64; shift += 8) {
    features.push_back(static_cast<char>((kLoaderFeatures >> shift) & 0xff));
  }
  for (auto result : {vars.set_string("LoaderInfo", info, kVolatileAttrs),
                      vars.set_string("LoaderFirmwareType", "UEFI 2.70", kVolatileAttrs),
                      vars.set_string("LoaderFirmwareInfo", "EDK II 1.00", kVolatileAttrs),
                      vars.set_raw("LoaderFeatures", features, kVolatileAttrs),
                      vars.set_string("LoaderDevicePartUUID", options.part_uuid, kVolatileAttrs)}) {
    if (!result) return result.error();
  }

  // config_load_defaults(): loader.conf, then the one-shot (deleted as soon as it is read).
  SelectionInput input;
  const fs::path conf = fs::path(esp_dir(options)) / "loader/loader.conf";
  std::error_code ec;
  if (fs::exists(conf, ec)) {
    auto text = read_text(conf);
    if (!text) return text.error();
    input.conf = parse_loader_conf(*text);
  }
  auto one_shot = vars.get_string("LoaderEntryOneShot");
  if (!one_shot) return one_shot.error();
  input.one_shot = *one_shot;
  if (input.one_shot) {
    if (auto removed = vars.remove("LoaderEntryOneShot"); !removed) return removed.error();
  }
  auto entry_default = vars.get_string("LoaderEntryDefault");
  if (!entry_default) return entry_default.error();
  input.entry_default = *entry_default;
  auto last_booted = vars.get_string("LoaderEntryLastBooted");
  if (!last_booted) return last_booted.error();
  input.last_booted = *last_booted;

  auto entries = load_entries(options);
  if (!entries) return entries.error();
  const auto selection = select_entry(*entries, input);
  if (!selection) {
    return make_error(ErrorCode::NotFound,
                      "systemd-boot: no loader found ({} has no bootable entry)",
                      entries_dir(options));
  }
  std::string listing;  // LoaderEntries: every id, each NUL-terminated UTF-16
  FirmwareBoot boot;
  for (const auto& entry : *entries) {
    boot.menu.push_back(entry.file_name);
    listing += utf16le_with_nul(entry.id);
  }
  if (auto set = vars.set_raw("LoaderEntries", listing, kVolatileAttrs); !set) return set.error();

  const Entry& chosen = (*entries)[selection->index];
  boot.file_before = chosen.file_name;
  boot.file_after = chosen.file_name;
  boot.selected_id = chosen.id;
  boot.chosen_by = selection->by;
  boot.one_shot = input.one_shot;

  // config_entry_bump_counters(): rename, then tell the OS the new name.
  if (chosen.counter) {
    boot.file_after = next_counter_name(chosen.file_name, *chosen.counter, ".conf");
    const fs::path dir = entries_dir(options);
    fs::rename(dir / boot.file_before, dir / boot.file_after, ec);
    if (ec) {
      return make_error(ErrorCode::Io, "rename {} → {}: {}", boot.file_before, boot.file_after,
                        ec.message());
    }
    boot.boot_count_path = "\\loader\\entries\\" + boot.file_after;
    if (auto set = vars.set_string("LoaderBootCountPath", *boot.boot_count_path, kVolatileAttrs);
        !set) {
      return set.error();
    }
  }

  // save_selected_entry(): the id as systemd-boot knows it; LoaderEntryLastBooted only for
  // "@saved" and not after a one-shot boot.
  if (auto set = vars.set_string("LoaderEntrySelected", chosen.id, kVolatileAttrs); !set) {
    return set.error();
  }
  const bool one_shot_boot = input.one_shot && *input.one_shot == chosen.id;
  const bool saved = (input.entry_default && *input.entry_default == "@saved") ||
                     (!input.entry_default && input.conf.default_pattern == "@saved");
  if (!one_shot_boot) {
    auto result = saved ? vars.set_string("LoaderEntryLastBooted", chosen.id, kNonVolatileAttrs)
                        : vars.remove("LoaderEntryLastBooted");
    if (!result) return result.error();
  }

  // The kernel: a new boot id, the entry's options as its command line.
  boot.boot_id = random_uuid();
  boot.options = chosen.options;
  boot.generation = init_generation(chosen.options);
  if (auto written = write_text(fs::path(options.root) / "proc/sys/kernel/random/boot_id",
                                boot.boot_id + "\n");
      !written) {
    return written.error();
  }
  if (auto written = write_text(fs::path(options.root) / "proc/cmdline", boot.options + "\n");
      !written) {
    return written.error();
  }
  return boot;
}

}  // namespace bootsim

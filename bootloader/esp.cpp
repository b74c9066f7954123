#include "bootloader/esp.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "bootloader/entry_dir.hpp"
#include "bootloader/unique_fd.hpp"
#include "core/directory.hpp"
#include "core/paths.hpp"
#include "core/read_file.hpp"
#include "initrd/util_linux.hpp"

namespace bootstate {
namespace {

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

// libblkid is loaded on first use (initrd/util_linux.hpp): only ESP discovery pays for it.
using util_linux::Blkid;
using Probe = std::unique_ptr<blkid_struct_probe, decltype(Blkid::free_probe)>;

std::string trimmed_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return {};
  while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) {
    text->pop_back();
  }
  return *text;
}

}  // namespace

Expected<std::vector<PartitionInfo>> probe_partition_table(const std::string& path) {
  auto library = util_linux::blkid();
  if (!library) return library.error();
  const Blkid& blkid = **library;
  Probe probe(blkid.new_probe_from_filename(path.c_str()), blkid.free_probe);
  if (!probe) {
    return make_error(ErrorCode::Io, "libblkid cannot open {}: {}", path, errno_text(errno));
  }
  blkid.probe_enable_superblocks(probe.get(), 0);
  blkid.probe_enable_partitions(probe.get(), 1);
  blkid.probe_set_partitions_flags(probe.get(), BLKID_PARTS_ENTRY_DETAILS);
  blkid_partlist list = blkid.probe_get_partitions(probe.get());
  if (list == nullptr) {
    return make_error(ErrorCode::NotFound, "no partition table found on {}", path);
  }
  std::vector<PartitionInfo> partitions;
  const int count = blkid.partlist_numof_partitions(list);
  for (int i = 0; i < count; ++i) {
    blkid_partition partition = blkid.partlist_get_partition(list, i);
    if (partition == nullptr) continue;
    PartitionInfo info;
    info.number = blkid.partition_get_partno(partition);
    const char* uuid = blkid.partition_get_uuid(partition);
    info.partuuid = uuid ? lowercase(uuid) : std::string();
    if (const char* type = blkid.partition_get_type_string(partition)) {
      info.type = lowercase(type);
    } else {
      info.type = fmt::format("0x{:x}", blkid.partition_get_type(partition));
    }
    const char* name = blkid.partition_get_name(partition);
    info.name = name ? name : "";
    // libblkid counts in 512-byte sectors whatever the device's sector size.
    info.start_bytes = static_cast<std::uint64_t>(blkid.partition_get_start(partition)) * 512;
    info.size_bytes = static_cast<std::uint64_t>(blkid.partition_get_size(partition)) * 512;
    partitions.push_back(std::move(info));
  }
  return partitions;
}

Expected<std::optional<std::string>> probe_filesystem_type(const std::string& path,
                                                           std::uint64_t offset,
                                                           std::uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_error(ErrorCode::Io, "open {}: {}", path, errno_text(errno));
  auto library = util_linux::blkid();
  if (!library) return library.error();
  const Blkid& blkid = **library;
  Probe probe(blkid.new_probe(), blkid.free_probe);
  if (!probe || blkid.probe_set_device(probe.get(), fd.get(), static_cast<blkid_loff_t>(offset),
                                       static_cast<blkid_loff_t>(size)) != 0) {
    return make_error(ErrorCode::Io, "libblkid cannot probe {} at offset {}", path, offset);
  }
  blkid.probe_enable_superblocks(probe.get(), 1);
  blkid.probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE);
  const int rc = blkid.do_safeprobe(probe.get());
  if (rc == 1) return std::optional<std::string>();
  if (rc == -2) {
    return make_error(ErrorCode::Failed, "{} at offset {}: several file system signatures", path,
                      offset);
  }
  if (rc < 0) return make_error(ErrorCode::Io, "probing {} at offset {} failed", path, offset);
  const char* type = nullptr;
  if (blkid.probe_lookup_value(probe.get(), "TYPE", &type, nullptr) != 0 || type == nullptr) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(type);
}

BlkidPartitionLookup::BlkidPartitionLookup(std::string root) : root_(std::move(root)) {}

Expected<std::vector<BlkidPartitionLookup::DiskPartition>> BlkidPartitionLookup::scan() const {
  // A disk whose table cannot be read is skipped below; a missing libblkid is not that.
  if (auto library = util_linux::blkid(); !library) return library.error();
  std::vector<DiskPartition> result;
  const std::string sys_block = path_join(root_, "sys/class/block");
  auto names = list_directory(sys_block);
  if (!names) return names.error();
  std::vector<std::string> disks;
  for (auto& name : *names) {
    const std::string partition_file = sys_block + "/" + name + "/partition";
    if (::access(partition_file.c_str(), F_OK) != 0) disks.push_back(std::move(name));
  }
  std::sort(disks.begin(), disks.end());
  for (const auto& disk : disks) {
    // Disks without a readable table (empty drives, loop devices, ram disks) are not ESPs.
    auto table = probe_partition_table(path_join(root_, "dev/" + disk));
    if (!table) continue;
    // The kernel lists partition N of disk D as a child directory of D whose "partition" file
    // holds N; its name (vda1, nvme0n1p1) is the device node's.
    std::vector<std::pair<int, std::string>> children;
    auto child_names = list_directory(sys_block + "/" + disk);
    for (const auto& child : child_names ? *child_names : std::vector<std::string>()) {
      const std::string number = trimmed_file(sys_block + "/" + disk + "/" + child + "/partition");
      if (!number.empty()) children.emplace_back(std::atoi(number.c_str()), child);
    }
    for (const auto& info : *table) {
      for (const auto& [number, name] : children) {
        if (number == info.number) result.push_back({path_join(root_, "dev/" + name), info});
      }
    }
  }
  return result;
}

Expected<std::optional<std::string>> BlkidPartitionLookup::find_by_partuuid(
    std::string_view partuuid) {
  const std::string wanted = lowercase(partuuid);
  if (lexically_normal(root_) == "/") {
    auto library = util_linux::blkid();
    if (!library) return library.error();
    if (char* device = (*library)->evaluate_tag("PARTUUID", wanted.c_str(), nullptr)) {
      std::string result(device);
      std::free(device);
      return std::optional<std::string>(std::move(result));
    }
  }
  auto partitions = scan();
  if (!partitions) return partitions.error();
  for (const auto& partition : *partitions) {
    if (partition.info.partuuid == wanted) return std::optional<std::string>(partition.device);
  }
  return std::optional<std::string>();
}

Expected<std::vector<std::string>> BlkidPartitionLookup::find_esp_typed() {
  return find_typed(kEspTypeGuid);
}

Expected<std::vector<std::string>> BlkidPartitionLookup::find_typed(std::string_view type) {
  auto partitions = scan();
  if (!partitions) return partitions.error();
  std::vector<std::string> devices;
  for (const auto& partition : *partitions) {
    if (partition.info.type == type) devices.push_back(partition.device);
  }
  return devices;
}

Expected<EspChoice> choose_esp(std::string_view explicit_path,
                               const std::optional<std::string>& loader_part_uuid,
                               PartitionLookup& lookup) {
  if (!explicit_path.empty()) return EspChoice{std::string(explicit_path), "", "--esp"};
  std::string tried;
  if (loader_part_uuid && !loader_part_uuid->empty()) {
    auto device = lookup.find_by_partuuid(*loader_part_uuid);
    if (!device) return device.error().with_context("looking up LoaderDevicePartUUID");
    if (*device) {
      return EspChoice{"", **device, fmt::format("LoaderDevicePartUUID={}", *loader_part_uuid)};
    }
    tried = fmt::format("no partition has PARTUUID {} (LoaderDevicePartUUID); ", *loader_part_uuid);
  }
  auto typed = lookup.find_esp_typed();
  if (!typed) return typed.error().with_context("looking for ESP-typed partitions");
  if (!typed->empty()) {
    return EspChoice{"", typed->front(), fmt::format("first partition of type {}", kEspTypeGuid)};
  }
  return make_error(ErrorCode::NotFound, "no ESP: {}no partition has GPT type {}; pass --esp",
                    tried, kEspTypeGuid);
}

Expected<EspMount> EspMount::mount(const std::string& device, const std::string& mountpoint) {
  if (::mkdir(mountpoint.c_str(), 0700) < 0 && errno != EEXIST) {
    return make_error(ErrorCode::Io, "mkdir {}: {}", mountpoint, errno_text(errno));
  }
  // Only root may read the ESP: it holds bootstate's state and random seeds.
  if (::mount(device.c_str(), mountpoint.c_str(), "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "umask=0077") < 0) {
    return make_error(ErrorCode::Io, "mount {} (vfat) on {}: {}", device, mountpoint,
                      errno_text(errno));
  }
  return EspMount(mountpoint);
}

EspMount::EspMount(EspMount&& other) noexcept : mountpoint_(std::move(other.mountpoint_)) {
  other.mountpoint_.clear();
}

EspMount::~EspMount() {
  (void)unmount();
}

Expected<void> EspMount::unmount() {
  if (mountpoint_.empty()) return {};
  if (::umount2(mountpoint_.c_str(), 0) < 0) {
    return make_error(ErrorCode::Io, "umount {}: {}", mountpoint_, errno_text(errno));
  }
  mountpoint_.clear();
  return {};
}

}  // namespace bootstate

// Finding and mounting the ESP, for the initrd phases (the state store lives on the ESP and the
// initrd has to reach it before the root file system is mounted).
//
// Order of preference: the path given with --esp; the partition whose PARTUUID systemd-boot
// reported in LoaderDevicePartUUID (the ESP it was started from); the first partition whose GPT
// type is the ESP type. The lookups sit behind PartitionLookup so the choice is testable without
// block devices; BlkidPartitionLookup is the real one (libblkid, re-rooted under --root).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// GPT partition type GUID of an EFI System Partition (lowercase, as libblkid reports it).
inline constexpr std::string_view kEspTypeGuid = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
// ... and of the Extended Boot Loader partition ($BOOT, XBOOTLDR) of the Boot Loader
// Specification, where nixpkgs' xbootldrMountPoint puts the entries.
inline constexpr std::string_view kXbootldrTypeGuid = "bc13c2ff-59e6-4262-a352-b275fd779f17";

// One entry of a partition table, as libblkid reports it.
struct PartitionInfo {
  int number = 0;        // 1-based partition number
  std::string partuuid;  // GPT partition UUID (lowercase)
  std::string type;      // GPT type GUID (lowercase), or the MBR type as "0xef"
  std::string name;      // GPT partition name, empty when none
  std::uint64_t start_bytes = 0;
  std::uint64_t size_bytes = 0;
};

// The partition table of a disk device or disk image file (libblkid; no loop device needed).
// NotFound when there is no partition table.
Expected<std::vector<PartitionInfo>> probe_partition_table(const std::string& path);

// The file system type ("vfat") libblkid finds in `path` at byte `offset` over `size` bytes
// (0 = to the end); nullopt when it finds none.
Expected<std::optional<std::string>> probe_filesystem_type(const std::string& path,
                                                           std::uint64_t offset,
                                                           std::uint64_t size);

class PartitionLookup {
 public:
  virtual ~PartitionLookup() = default;
  // The device node of the partition with this PARTUUID (any case); nullopt when none.
  virtual Expected<std::optional<std::string>> find_by_partuuid(std::string_view partuuid) = 0;
  // Device nodes of all partitions typed as ESP, in disk order then partition order.
  virtual Expected<std::vector<std::string>> find_esp_typed() = 0;
};

// libblkid over the block devices listed in <root>/sys/class/block, probing <root>/dev/NAME.
// With root "/" a PARTUUID is resolved with blkid_evaluate_tag first (udev's by-partuuid links
// and the blkid cache), falling back to probing every disk.
class BlkidPartitionLookup final : public PartitionLookup {
 public:
  explicit BlkidPartitionLookup(std::string root);
  Expected<std::optional<std::string>> find_by_partuuid(std::string_view partuuid) override;
  Expected<std::vector<std::string>> find_esp_typed() override;
  // Device nodes of all partitions of GPT type `type` (lowercase), in disk then partition order.
  Expected<std::vector<std::string>> find_typed(std::string_view type);

 private:
  struct DiskPartition {
    std::string device;  // <root>/dev/NAME of the partition
    PartitionInfo info;
  };
  // Every partition of every whole disk that has a partition table libblkid can read.
  Expected<std::vector<DiskPartition>> scan() const;

  std::string root_;
};

struct EspChoice {
  std::string path;    // --esp given: use this directory as it is; empty otherwise
  std::string device;  // the partition to mount; empty when `path` is set
  std::string reason;  // how it was chosen, for logs and `status`
};

// Pure choice over the lookups (see the file comment). NotFound names what was tried.
Expected<EspChoice> choose_esp(std::string_view explicit_path,
                               const std::optional<std::string>& loader_part_uuid,
                               PartitionLookup& lookup);

// The ESP mounted (vfat, nosuid,nodev,noexec) for as long as this object lives.
class EspMount {
 public:
  // Creates `mountpoint` if needed and mounts `device` there. Io with errno text on failure.
  static Expected<EspMount> mount(const std::string& device, const std::string& mountpoint);
  EspMount(EspMount&& other) noexcept;
  EspMount& operator=(EspMount&&) = delete;
  EspMount(const EspMount&) = delete;
  // Unmounts if still mounted; errors are lost here, so call unmount() where they matter.
  ~EspMount();
  // Unmounts now, reporting failure (EBUSY when a file on it is still open).
  Expected<void> unmount();
  const std::string& path() const { return mountpoint_; }

 private:
  explicit EspMount(std::string mountpoint) : mountpoint_(std::move(mountpoint)) {}
  std::string mountpoint_;  // empty once unmounted or moved from
};

}  // namespace bootstate

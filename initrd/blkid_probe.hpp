// libblkid probing for storage steps: what a region of a disk holds (the safety check before
// space is handed to a partition) and what a device is (the `require` precondition).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace bootstate {

struct ProbeResult {
  std::string type;         // TYPE: "ext4", "vfat", "swap", a partition table type ("gpt", "dos")
  std::string label;        // LABEL, empty when none
  std::string uuid;         // UUID, empty when none
  std::uint64_t size = 0;   // bytes probed (the device or region size)
  bool ambivalent = false;  // more than one signature was found (type then says "ambivalent")
  bool found() const { return !type.empty(); }
};

// Probes `size` bytes of `path` from `offset` (size 0: to the end) for a file system, RAID
// member, swap or partition table signature. A region that holds none returns an empty
// type. Used before a partition grows over, or is created on, that region.
Expected<ProbeResult> probe_region(const std::string& path, std::uint64_t offset,
                                   std::uint64_t size);

// Resolves a tag ("LABEL", "UUID", "PARTLABEL", "PARTUUID") through libblkid's view of the
// running system's devices (/dev). Only meaningful when the root is "/". nullopt: no device
// has it; an error: libblkid cannot be loaded.
Expected<std::optional<std::string>> evaluate_system_tag(const std::string& tag,
                                                         const std::string& value);

}  // namespace bootstate

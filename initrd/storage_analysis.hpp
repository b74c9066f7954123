// Everything a storage step decides before it writes: read every disk it names, plan every
// operation, probe the `require` preconditions and the space being handed to partitions.
// run(), check() and describe() share it, so what preview shows is what run will do.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/plan.hpp"
#include "initrd/storage_model.hpp"

namespace bootstate {

// `path` under `root` ("/" or empty: unchanged): "/tmp/t" + "/dev/vda" → "/tmp/t/dev/vda".
std::string reroot(std::string_view root, std::string_view path);

struct DiskWork {
  std::string path;  // re-rooted path that is opened
  DiskPlan plan;
};

struct StepAnalysis {
  std::vector<DiskWork> disks;            // in the order the operations first name them
  std::vector<std::string> requirements;  // one line per satisfied `require`
  bool changes() const;
};

struct AnalysisOptions {
  // Probe `require` operations and the space claimed by grow/add (run, describe). check()
  // leaves them out: it only asks whether the table operations are in effect.
  bool preconditions = true;
};

// Reads, plans and checks the whole operation list. Any failure (unreadable disk, unknown or
// ambiguous reference, no room, shrink, a failed `require`, a signature in claimed space
// without allow-destroy) fails the whole analysis: nothing may be written then.
Expected<StepAnalysis> analyse_storage_step(const std::vector<StorageOperation>& operations,
                                            std::string_view root, AnalysisOptions options = {});

// Checks one `require` against the device it names. Tags (PARTLABEL=, PARTUUID=, LABEL=,
// UUID=) are looked up among the partitions of `disks` first, then — only when `root` is
// "/" — through libblkid's view of the system. Returns a line saying what was found.
Expected<std::string> check_requirement(const StorageOperation& op, std::size_t index,
                                        std::string_view root, const std::vector<DiskWork>& disks);

// A random (version 4) UUID in upper case, for partitions the plan gives none: chosen before
// writing so the undo record written ahead of the table already names it.
std::string random_partition_uuid();

}  // namespace bootstate

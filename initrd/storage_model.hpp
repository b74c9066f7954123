// The pure half of storage steps: a partition table as data, and the decision of what a list
// of operations does to it. Nothing here touches a device, so every refusal (unknown or
// ambiguous reference, size beyond the disk, overlap, shrinking) is decided and tested without
// one; fdisk_table.hpp reads and writes tables, blkid_probe.hpp probes signatures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/plan.hpp"

namespace bootstate {

enum class LabelKind : std::uint8_t { Gpt, Dos };
std::string_view to_string(LabelKind label);

struct PartitionModel {
  std::size_t number = 0;   // 1-based, as /dev/vda<number> and sfdisk name it
  std::uint64_t start = 0;  // first sector
  std::uint64_t size = 0;   // in sectors
  std::string name;         // GPT partition name (PARTLABEL); empty on dos
  std::string type;         // GPT: type GUID, upper case; dos: two hex digits ("83")
  std::string uuid;         // GPT: PARTUUID, upper case; dos: "<disk id>-<NN>" as blkid says
  std::uint64_t attrs = 0;  // GPT attribute bits; 0 on dos
  bool container = false;   // dos extended partition: holds logical partitions
  std::uint64_t end() const { return start + size - 1; }
  bool operator==(const PartitionModel&) const = default;
};

struct TableModel {
  std::string disk;  // the path as the plan wrote it (for messages)
  LabelKind label = LabelKind::Gpt;
  std::uint64_t sector_size = 512;
  std::uint64_t grain = 2048;              // new partitions start on a multiple of this (sectors)
  std::uint64_t first_lba = 0;             // first sector a partition may use
  std::uint64_t last_lba = 0;              // last sector a partition may use (inclusive)
  std::size_t max_partitions = 0;          // GPT entries in the array; dos: 4 primaries
  std::vector<PartitionModel> partitions;  // ordered by number

  const PartitionModel* find(std::size_t number) const;
  PartitionModel* find(std::size_t number);
};

// What one operation does to its disk.
struct PlannedOp {
  std::size_t index = 0;  // position in the step's operation list
  StorageOpKind kind = StorageOpKind::Require;
  bool change = false;              // false: already in effect (an interrupted run did it)
  std::size_t number = 0;           // the partition it acts on (the new one for add)
  std::string summary;              // "grow partition 2 (root) from 1 GiB to 20 GiB"
  std::uint64_t claimed_start = 0;  // sectors newly given to a partition (grow/add), which
  std::uint64_t claimed_size = 0;   // must hold no signature unless allow_destroy; 0 = none
  bool allow_destroy = false;
};

struct DiskPlan {
  TableModel before;
  TableModel after;
  std::vector<PlannedOp> ops;
  bool changes() const;
};

// Resolves "PARTLABEL=…", "PARTUUID=…" or a number against `table`. Unknown and ambiguous
// references are errors that quote the reference and the disk.
Expected<std::size_t> resolve_partition(const TableModel& table, std::string_view reference);

// Applies `ops` (those of one step that name this disk, `indices` their positions in the
// step) to `table` in order, each seeing the result of the ones before. Fails, naming the
// operation, when any cannot be applied; an operation whose effect is already there is
// planned with change=false, so a re-run after an interruption is a no-op. `require`
// operations are not handled here (they probe devices).
Expected<DiskPlan> plan_disk(const TableModel& table,
                             const std::vector<const StorageOperation*>& ops,
                             const std::vector<std::size_t>& indices);

// The free regions of `table` (first sector, sectors), in disk order.
std::vector<std::pair<std::uint64_t, std::uint64_t>> free_regions(const TableModel& table);

// One line per partition, for previews: "2 root linux start 2048 size 1 GiB".
std::vector<std::string> describe_table(const TableModel& table);

}  // namespace bootstate

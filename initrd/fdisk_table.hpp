// The effect half of partition tables: reading a disk (block device or image file) into a
// TableModel and writing a planned TableModel back, both through libfdisk. Nothing here
// decides anything; storage_model.hpp does.
#pragma once

#include <string>

#include "core/error.hpp"
#include "initrd/storage_model.hpp"

namespace bootstate {

// Reads the table of `path` (already re-rooted). `display` is the name used in messages and
// stored in TableModel::disk (the plan's path). The disk is opened read-write when it can be
// (nothing is written) so that libfdisk relocates a backup GPT header that is not at the end
// of a disk that was enlarged: the model then shows the space a write would make usable.
// Fails with NotFound when the disk has no partition table, Unsupported for labels other
// than GPT and dos.
Expected<TableModel> read_table(const std::string& path, const std::string& display);

struct WriteReport {
  bool block_device = false;
  std::string kernel;  // what the kernel was told ("re-read", or why it could not be)
};

// Makes the table of `path` equal to `after`. `before` must be what read_table returns now;
// if the disk changed in between, nothing is written and the call fails. Partitions in
// `before` and not in `after` are deleted, new ones added (partition number, start, size,
// name, type, uuid and attributes as in `after`), others changed field by field. The table
// is written once (fdisk_write_disklabel) and synced; for a block device the kernel is asked
// to re-read the changed partitions (fdisk_reread_changes, which uses BLKPG).
Expected<WriteReport> write_table(const std::string& path, const TableModel& before,
                                  const TableModel& after);

}  // namespace bootstate

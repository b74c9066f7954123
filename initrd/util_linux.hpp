// libfdisk and libblkid (util-linux), loaded on first use with dlopen(), as
// stage2/libsystemd.hpp loads libsystemd and as systemd loads its optional libraries.
//
// Why: `bootstate run --phase P` runs at every boot, and with nothing pending it must cost about
// as much as reading a small file (docs/PERFORMANCE.md, "(a) nothing pending"). Linked normally,
// libfdisk.so.1 (which needs libblkid.so.1 and libuuid.so.1) was more than half of the
// program's start-up instructions, for libraries that only a storage step, the preview of one,
// or the initrd's ESP discovery by partition table ever calls. Loaded here, only those pay.
//
// Why it may be missing: a minimal initrd or container may lack them. Then fdisk()/blkid()
// return an Unsupported error ("libfdisk.so.1 not available: <dlerror text>") that the storage
// step or the ESP discovery reports like any other failure: never a crash.
//
// The function-pointer types come from the real <libfdisk/libfdisk.h> and <blkid/blkid.h> with
// decltype, so a signature change there is a compile error here, not a wrong call at run time.
// Each table member is the library function's name without its "fdisk_"/"blkid_" prefix:
// fdisk_new_context is `fdisk.new_context`.
#pragma once

#include <blkid/blkid.h>
#include <libfdisk/libfdisk.h>

#include "core/error.hpp"

namespace bootstate::util_linux {

// clang-format off
// Every libfdisk function bootstate calls (initrd/fdisk_table.cpp), without the prefix.
// fdisk_is_label() is a macro over fdisk_is_labeltype(), so the table has the latter.
#define BOOTSTATE_FDISK_FUNCTIONS(X)                                                            \
  X(add_partition) X(ask_get_type) X(ask_print_get_mesg) X(assign_device) X(deassign_device)    \
  X(delete_partition) X(disable_dialogs) X(get_disklabel_id) X(get_first_lba) X(get_grain_size) \
  X(get_label) X(get_last_lba) X(get_npartitions) X(get_partitions) X(get_sector_size)          \
  X(gpt_get_partition_attrs) X(gpt_set_partition_attrs) X(has_label) X(is_labeltype)            \
  X(is_regfile) X(label_get_name) X(label_get_parttype_from_code)                               \
  X(label_get_parttype_from_string) X(new_context) X(new_partition) X(new_unknown_parttype)     \
  X(partition_end_follow_default) X(partition_get_name) X(partition_get_partno)                 \
  X(partition_get_size) X(partition_get_start) X(partition_get_type) X(partition_get_uuid)      \
  X(partition_is_container) X(partition_is_freespace) X(partition_is_used)                      \
  X(partition_partno_follow_default) X(partition_set_name) X(partition_set_partno)              \
  X(partition_set_size) X(partition_set_start) X(partition_set_type) X(partition_set_uuid)      \
  X(partition_size_explicit) X(partition_start_follow_default) X(parttype_get_code)             \
  X(parttype_get_string) X(ref_parttype) X(reread_changes) X(set_ask) X(set_partition)          \
  X(set_partition_type) X(table_get_nents) X(table_get_partition) X(unref_context)              \
  X(unref_parttype) X(unref_partition) X(unref_table) X(write_disklabel)

// Every libblkid function bootstate calls (initrd/blkid_probe.cpp, bootloader/esp.cpp).
#define BOOTSTATE_BLKID_FUNCTIONS(X)                                                         \
  X(do_safeprobe) X(evaluate_tag) X(free_probe) X(new_probe) X(new_probe_from_filename)       \
  X(partition_get_name) X(partition_get_partno) X(partition_get_size) X(partition_get_start)  \
  X(partition_get_type) X(partition_get_type_string) X(partition_get_uuid)                    \
  X(partlist_get_partition) X(partlist_numof_partitions) X(probe_enable_partitions)           \
  X(probe_enable_superblocks) X(probe_get_partitions) X(probe_get_size) X(probe_lookup_value) \
  X(probe_set_device) X(probe_set_partitions_flags) X(probe_set_superblocks_flags)
// clang-format on

struct Fdisk {
#define BOOTSTATE_FDISK_MEMBER(name) decltype(&::fdisk_##name) name = nullptr;
  BOOTSTATE_FDISK_FUNCTIONS(BOOTSTATE_FDISK_MEMBER)
#undef BOOTSTATE_FDISK_MEMBER
};

struct Blkid {
#define BOOTSTATE_BLKID_MEMBER(name) decltype(&::blkid_##name) name = nullptr;
  BOOTSTATE_BLKID_FUNCTIONS(BOOTSTATE_BLKID_MEMBER)
#undef BOOTSTATE_BLKID_MEMBER
};

// "libfdisk.so.1" with every function above resolved, or an Unsupported error naming the
// library and dlerror()'s reason. Loads on the first call only (later calls give the same
// answer); thread-safe. The library stays loaded until the process exits, so the table may be
// kept for as long as the caller likes.
Expected<const Fdisk*> fdisk();

// "libblkid.so.1", the same way.
Expected<const Blkid*> blkid();

}  // namespace bootstate::util_linux

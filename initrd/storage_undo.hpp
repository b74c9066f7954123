// The undo record of a storage step (StepRecord::undo_record) and the pure decisions around
// it: what a plan changed, how two records of the same step combine, and what reverting does
// to a table.
//
// Persisted JSON (version 1), kept by the state store as opaque text; an older bootstate must
// be able to read it, so fields are only ever added:
//   {"version":1,"disks":[{"disk":"/dev/vda","label":"gpt",
//     "added":[{"number":3,"uuid":"…","name":"home"}],       // partitions the step created
//     "changed":[{"number":2,"uuid":"…",                       // identity of a changed one
//                 "name":"old","type":"…","attrs":"0x4",       // old values, only those changed
//                 "grown_from":2097152}]}]}                     // old size in sectors (no undo)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "initrd/storage_model.hpp"

namespace bootstate {

struct UndoAdded {
  std::size_t number = 0;
  std::string uuid;  // how revert finds it again (GPT PARTUUID)
  std::string name;
  bool operator==(const UndoAdded&) const = default;
};

struct UndoChanged {
  std::size_t number = 0;
  std::string uuid;                         // GPT: identity; dos: empty, the number is the identity
  std::optional<std::string> name;          // old name, when the step changed it
  std::optional<std::string> type;          // old type, when changed
  std::optional<std::uint64_t> attrs;       // old attributes, when changed
  std::optional<std::uint64_t> grown_from;  // old size in sectors: grow has no undo
  bool operator==(const UndoChanged&) const = default;
};

struct UndoDisk {
  std::string disk;  // the plan's path (re-rooted again at revert time)
  LabelKind label = LabelKind::Gpt;
  std::vector<UndoAdded> added;
  std::vector<UndoChanged> changed;
  bool operator==(const UndoDisk&) const = default;
};

struct UndoRecord {
  std::vector<UndoDisk> disks;
  bool empty() const;
  bool has_grow() const;
  UndoDisk& disk(const std::string& path, LabelKind label);  // finds or appends
  bool operator==(const UndoRecord&) const = default;
};

// What `plan` changes (before → after), plus every partition an add-partition operation
// claims even when it already existed: a re-run after a power cut sees the partition as in
// effect, and the step still owns it.
UndoDisk undo_for_plan(const DiskPlan& plan);

// Adds `newer` into `record`; where both know an old value, `record` (the earlier attempt's,
// which saw the disk before the step touched it) wins.
void merge_undo(UndoRecord& record, const UndoRecord& newer);

std::string encode_undo(const UndoRecord& record);
// Empty text is an empty record. Unknown fields are ignored (newer writers may add some).
Expected<UndoRecord> decode_undo(std::string_view text);

struct RevertPlan {
  TableModel after;                     // the table once reverted
  std::vector<PartitionModel> deleted;  // added partitions to delete (probe them first)
  std::vector<std::string> lines;       // what it does, for messages
  bool changes = false;
};

// Reverts `undo` on `table`: added partitions (found by PARTUUID) are deleted, changed fields
// get their old values back. Partitions already gone or already restored are skipped, so a
// revert interrupted by a power cut runs again safely. Fails when a changed partition cannot
// be found. Grows are not reverted (the caller refuses them first).
Expected<RevertPlan> plan_revert(const TableModel& table, const UndoDisk& undo);

}  // namespace bootstate

// The executor of `storage` steps (initrd phases): partition table changes through libfdisk
// and preconditions through libblkid, on block devices or on image files under --root.
//
// Guarantees, in the order run() works:
//  1. Every disk is read and the whole operation list is planned and checked first (unknown
//     or ambiguous references, no room, overlap, shrinking, failed `require`, signatures in
//     space being handed to a partition without `allow-destroy`): on any failure nothing is
//     written and the disks stay byte-identical.
//  2. An operation already in effect is success, so an interrupted step runs again safely.
//  3. The undo record is computed before writing, written to the step's work directory
//     (storage-undo.json, fsync'ed) and merged with the record of an earlier attempt, so a
//     re-run after a power cut between the write and the state commit still reports the
//     values the disk had before the step first touched it.
//  4. Each disk's table is written once, re-read and compared with the plan; for a block
//     device the kernel is asked to re-read the changed partitions.
#pragma once

#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate {

class StorageStepExecutor : public StepExecutor {
 public:
  // Applies context.step->storage. ok=false with a message naming the operation, the disk
  // and the reason when anything fails; undo_record is the JSON of storage_undo.hpp.
  StepOutcome run(const StepContext& context) override;
  // Applied when every table operation is in effect (requires are not probed), NotApplied
  // when one is not or cannot be planned, Unknown when a disk cannot be read.
  CheckResult check(const StepContext& context) override;
  // Undoes from context.record->undo_record: deletes added partitions (refused, with the
  // signature named, when one holds data), restores old names, types and attributes. A step
  // that grew a partition is not reverted at all: ok=false, "grow-partition cannot be
  // undone; the grown partition is kept".
  StepOutcome revert(const StepContext& context) override;
  // For each disk the table before and after, the operations in words, `detail_json` with
  // the same as data; irreversible when the step has a grow-partition; blocker when planning
  // or a precondition fails. Writes nothing.
  StepPreview describe(const StepContext& context) override;
};

// Whether revert() can undo `step`: a storage step without grow-partition operations.
bool storage_step_revertible(const Step& step);

}  // namespace bootstate

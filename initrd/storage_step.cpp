// run/check/revert of storage steps; describe() lives in storage_preview.cpp. The decisions
// are in storage_analysis/storage_model/storage_undo; this file orders the effects: journal
// the undo record, write each table once, verify it by reading it back.
#include "initrd/storage_step.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "core/read_file.hpp"
#include "initrd/blkid_probe.hpp"
#include "initrd/fdisk_table.hpp"
#include "initrd/storage_analysis.hpp"
#include "initrd/storage_undo.hpp"

namespace bootstate {
namespace {

constexpr std::string_view kJournalName = "storage-undo.json";

StepOutcome failure(std::string message) {
  StepOutcome outcome;
  outcome.ok = false;
  outcome.message = std::move(message);
  return outcome;
}

std::string journal_path(const StepContext& context) {
  if (context.work_dir.empty()) return {};
  return context.work_dir + "/" + std::string(kJournalName);
}

// Written before the table so that a power cut after the write leaves the old values
// somewhere: the state store only learns the undo record when run() returns.
Expected<void> write_journal(const std::string& path, const std::string& text) {
  if (path.empty()) return {};
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::Io, "open {}: {}", temporary, errno_text(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) return make_error(ErrorCode::Io, "write {}: {}", temporary, errno_text(saved));
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return make_error(ErrorCode::Io, "rename {}: {}", temporary, errno_text(errno));
  }
  std::string directory = path.substr(0, path.rfind('/'));
  if (int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

// An unreadable journal is as good as none: the persisted record still holds.
std::string read_journal(const std::string& path) {
  if (path.empty()) return {};
  auto text = read_file(path);
  return text ? std::move(*text) : std::string();
}

// The earliest knowledge of the disk before this step: the persisted record of an earlier
// attempt, then the journal of an attempt that was cut before its outcome was committed.
UndoRecord earlier_undo(const StepContext& context) {
  UndoRecord record;
  if (context.record && !context.record->undo_record.empty()) {
    if (auto decoded = decode_undo(context.record->undo_record)) record = std::move(*decoded);
  }
  if (auto journal = decode_undo(read_journal(journal_path(context)))) merge_undo(record, *journal);
  return record;
}

Expected<void> verify_written(const std::vector<StorageOperation>& operations,
                              std::string_view root, const StepAnalysis& planned) {
  auto again = analyse_storage_step(operations, root, AnalysisOptions{false});
  if (!again) return again.error().with_context("verifying the written table");
  for (std::size_t i = 0; i < planned.disks.size(); ++i) {
    const TableModel& wanted = planned.disks[i].plan.after;
    const TableModel& found = again->disks[i].plan.before;
    if (found.partitions != wanted.partitions || again->disks[i].plan.changes()) {
      return make_error(ErrorCode::Failed,
                        "{}: the table read back after writing differs from the one written",
                        wanted.disk);
    }
  }
  return {};
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}

}  // namespace

StepOutcome StorageStepExecutor::run(const StepContext& context) {
  if (!context.step || context.step->kind != StepKind::Storage) {
    return failure("storage executor called without a storage step");
  }
  const std::vector<StorageOperation>& operations = context.step->storage;
  auto analysis = analyse_storage_step(operations, context.root);
  if (!analysis) return failure(analysis.error().message);

  for (DiskWork& disk : analysis->disks) {
    for (PartitionModel& partition : disk.plan.after.partitions) {
      if (!disk.plan.before.find(partition.number) && partition.uuid.empty()) {
        partition.uuid = random_partition_uuid();
      }
    }
  }
  UndoRecord undo = earlier_undo(context);
  UndoRecord now;
  for (const DiskWork& disk : analysis->disks) now.disks.push_back(undo_for_plan(disk.plan));
  merge_undo(undo, now);

  std::vector<std::string> done;
  for (const DiskWork& disk : analysis->disks) {
    for (const PlannedOp& op : disk.plan.ops) done.push_back(op.summary);
  }
  for (const std::string& line : analysis->requirements) done.push_back(line);

  if (analysis->changes()) {
    if (auto journaled = write_journal(journal_path(context), encode_undo(undo)); !journaled) {
      return failure(journaled.error().message);
    }
    for (const DiskWork& disk : analysis->disks) {
      if (!disk.plan.changes()) continue;
      auto report = write_table(disk.path, disk.plan.before, disk.plan.after);
      if (!report) return failure(report.error().message);
      if (!report->kernel.empty())
        done.push_back(fmt::format("{}: {}", disk.plan.before.disk, report->kernel));
    }
    if (auto verified = verify_written(operations, context.root, *analysis); !verified) {
      StepOutcome outcome = failure(verified.error().message);
      outcome.undo_record = encode_undo(undo);  // the write happened: keep what undo needs
      return outcome;
    }
  }
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message =
      analysis->changes() ? join_lines(done) : "already in effect: " + join_lines(done);
  outcome.undo_record = encode_undo(undo);
  return outcome;
}

CheckResult StorageStepExecutor::check(const StepContext& context) {
  if (!context.step || context.step->kind != StepKind::Storage) return CheckResult::Unknown;
  auto analysis = analyse_storage_step(context.step->storage, context.root, AnalysisOptions{false});
  if (!analysis) {
    ErrorCode code = analysis.error().code;
    return code == ErrorCode::Io ? CheckResult::Unknown : CheckResult::NotApplied;
  }
  return analysis->changes() ? CheckResult::NotApplied : CheckResult::Applied;
}

StepOutcome StorageStepExecutor::revert(const StepContext& context) {
  UndoRecord undo = earlier_undo(context);
  if (undo.has_grow() || (context.step && !storage_step_revertible(*context.step)))
    return failure("grow-partition cannot be undone; the grown partition is kept");
  if (undo.empty() && context.record != nullptr && context.record->state == StepState::Running) {
    // Interrupted before its outcome (and undo record) was committed, and the journal is gone
    // (a tmpfs work directory after a reboot): "nothing to undo" could be a lie (issue #13).
    return failure(
        "the step was interrupted before its undo record was saved, and its journal is gone: "
        "bootstate cannot tell what it changed (look at the table, then `bootstate decline ID` "
        "keeps it as it is)");
  }
  if (undo.empty()) {
    StepOutcome outcome;
    outcome.ok = true;
    outcome.exit_status = 0;
    outcome.message = "nothing to undo";
    return outcome;
  }
  struct Work {
    std::string path;
    TableModel before;
    RevertPlan plan;
  };
  std::vector<Work> work;
  for (const UndoDisk& disk : undo.disks) {
    std::string path = reroot(context.root, disk.disk);
    auto table = read_table(path, disk.disk);
    if (!table) return failure(table.error().message);
    auto plan = plan_revert(*table, disk);
    if (!plan) return failure(plan.error().message);
    for (const PartitionModel& partition : plan->deleted) {
      auto probe = probe_region(path, partition.start * table->sector_size,
                                partition.size * table->sector_size);
      if (!probe) return failure(probe.error().message);
      if (probe->found()) {
        return failure(fmt::format(
            "partition {} ({}) on {} holds a {} signature; not deleting it (wipe it first if its "
            "data is not needed)",
            partition.number, partition.name, disk.disk, probe->type));
      }
    }
    work.push_back(Work{path, std::move(*table), std::move(*plan)});
  }
  std::vector<std::string> done;
  for (const Work& disk : work) {
    if (!disk.plan.changes) continue;
    auto report = write_table(disk.path, disk.before, disk.plan.after);
    if (!report) return failure(report.error().message);
    done.insert(done.end(), disk.plan.lines.begin(), disk.plan.lines.end());
  }
  for (const UndoDisk& disk : undo.disks) {  // verify: a second revert has nothing to do
    auto table = read_table(reroot(context.root, disk.disk), disk.disk);
    if (!table) return failure(table.error().message);
    auto plan = plan_revert(*table, disk);
    if (!plan || plan->changes) {
      return failure(
          fmt::format("{}: the table read back after the revert is not reverted", disk.disk));
    }
  }
  if (std::string path = journal_path(context); !path.empty()) std::remove(path.c_str());
  StepOutcome outcome;
  outcome.ok = true;
  outcome.exit_status = 0;
  outcome.message = done.empty() ? "already undone" : join_lines(done);
  return outcome;
}

bool storage_step_revertible(const Step& step) {
  return std::none_of(step.storage.begin(), step.storage.end(), [](const StorageOperation& op) {
    return op.op == StorageOpKind::GrowPartition;
  });
}

}  // namespace bootstate

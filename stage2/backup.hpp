// The real BackupStore: snapshots of a migration's `backup` paths as exact copies in a
// directory on the root file system, restored path by path with atomic renames.
//
// Layout: <backups_dir>/<migration>/manifest and data/<index> (see backup_manifest.hpp); a
// snapshot is built in <backups_dir>/<migration>.tmp and renamed into place once complete.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate {

class FileBackupStore : public BackupStore {
 public:
  // `root`: the prefix under which the backed-up absolute paths live ("/" normally, "/sysroot"
  // in the initrd, or a --root tree). `backups_dir`: where snapshots are kept (for example
  // <root>/var/lib/bootstate/backups); created when missing. Displaced items go to the
  // sibling directory "displaced" of `backups_dir`.
  FileBackupStore(std::string root, std::string backups_dir)
      : root_(std::move(root)), backups_dir_(std::move(backups_dir)) {}

  // Takes a fresh snapshot of `paths`, recording which existed. An incomplete snapshot left by
  // an interruption is discarded first; a complete earlier one is replaced atomically (the
  // old one stays in place until the new one is complete and durable). Owners, modes,
  // timestamps, xattrs, hard links among the copied files, symlinks and device nodes are kept.
  // Errors name the path and errno; InvalidInput for a bad id or path, and for a path whose
  // tree holds `backups_dir` (it would copy itself, and restoring it would delete the store).
  Expected<void> snapshot(std::string_view migration_id,
                          const std::vector<std::string>& paths) override;

  // Puts every snapshotted path back: a path that existed is copied to a sibling temporary
  // name and renamed over (exchanged with) the current one, so after a crash each path is
  // either as it was or as restored; a path that did not exist is removed. Re-running after
  // an interruption completes the restore; running it twice gives the same result.
  // Before that, everything there now that the snapshot does not hold the same is moved under
  // <data>/displaced/ATTEMPT/MIGRATION/PATH (stage2/displace.hpp); returns what was moved.
  // The directories above each path are walked from `root` without following a symlink (one
  // owned by root in a directory only root can write is followed: the system's own layout);
  // links inside the restored trees are restored as links, never followed.
  // NotFound when there is no complete snapshot of `migration_id`.
  Expected<std::vector<std::string>> restore(std::string_view migration_id,
                                             std::uint64_t attempt) override;

  // Where restores of `attempt` put displaced items of `migration_id`.
  std::string displaced_dir(std::uint64_t attempt, std::string_view migration_id) const;

  // Deletes the snapshot and any incomplete one. Missing is success.
  Expected<void> discard(std::string_view migration_id) override;

  // The directory holding the complete snapshot of `migration_id` (for status and tests).
  std::string snapshot_dir(std::string_view migration_id) const;

 private:
  Expected<void> check_outside_store(const std::string& covered, const std::string& path) const;
  Expected<void> restore_entries(const std::string& directory, const std::string& displaced,
                                 std::vector<std::string>& moved);

  std::string root_;
  std::string backups_dir_;
};

}  // namespace bootstate

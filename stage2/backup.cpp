#include "stage2/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/paths.hpp"
#include "core/plan.hpp"
#include "stage2/backup_manifest.hpp"
#include "stage2/tree_copy.hpp"

namespace bootstate {

namespace {

using stage2::ManifestEntry;

Expected<void> check_migration_id(std::string_view id) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string_view::npos ||
      id.find('\0') != std::string_view::npos) {
    return make_error(ErrorCode::InvalidInput, "backup: \"{}\" is not a valid migration id", id);
  }
  return {};
}

Error io_error(std::string_view what, const std::string& path, int error) {
  return make_error(ErrorCode::Io, "cannot {} {}: {}", what, path, errno_text(error));
}

Expected<void> rename_path(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return io_error("rename " + from + " to", to, errno);
  return {};
}

// Puts `fresh` at `target`, where something exists already, atomically when the file system
// can exchange two names (every Linux file system bootstate backs up to: ext4, btrfs, xfs,
// tmpfs). Afterwards the old object is at `fresh`, or gone.
Expected<void> replace_path(const std::string& fresh, const std::string& target,
                            const std::string& aside) {
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    return remove_tree(fresh);
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return io_error("exchange " + fresh + " with", target, errno);
  }
  // No exchange: a short window where `target` is missing, but the restored copy is complete
  // and durable, so a re-run of restore puts it in place.
  BOOTSTATE_TRY(rename_path(target, aside));
  BOOTSTATE_TRY(rename_path(fresh, target));
  return remove_tree(aside);
}

}  // namespace

// A backed-up tree that holds the store would copy the snapshot being built into itself, and
// restoring it would delete the snapshot: such paths are refused (compared lexically).
Expected<void> FileBackupStore::check_outside_store(const std::string& covered,
                                                    const std::string& path) const {
  const std::string store = lexically_normal(backups_dir_);
  const std::string tree = lexically_normal(covered);
  if (store == tree || store.starts_with(tree == "/" ? tree : tree + "/")) {
    return make_error(ErrorCode::InvalidInput, "backup path {} contains the backup store {}", path,
                      backups_dir_);
  }
  return {};
}

std::string FileBackupStore::snapshot_dir(std::string_view migration_id) const {
  return fmt::format("{}/{}", backups_dir_, migration_id);
}

Expected<void> FileBackupStore::snapshot(std::string_view migration_id,
                                         const std::vector<std::string>& paths) {
  BOOTSTATE_TRY(check_migration_id(migration_id));
  for (const auto& path : paths) {
    BOOTSTATE_TRY(stage2::check_backup_path(path));
    BOOTSTATE_TRY(check_outside_store(stage2::under_root(root_, path), path));
  }
  const std::string context = fmt::format("backup of migration {}", migration_id);
  auto with_context = [&context](const Error& error) { return error.with_context(context); };

  // A leading dot: migration ids cannot start with one, so this never names another snapshot.
  const std::string building = fmt::format("{}/.{}.tmp", backups_dir_, migration_id);
  const std::string final_dir = snapshot_dir(migration_id);
  if (auto made = make_directories(backups_dir_); !made) return with_context(made.error());
  // An earlier, interrupted snapshot is incomplete by definition: start over.
  if (auto removed = remove_tree(building); !removed) return with_context(removed.error());
  for (const std::string& directory : {building, building + "/data"}) {
    if (::mkdir(directory.c_str(), 0700) != 0) {
      return with_context(io_error("create directory", directory, errno));
    }
  }

  stage2::TreeCopier copier(paths.size());
  std::vector<ManifestEntry> entries;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string source = stage2::under_root(root_, paths[i]);
    auto present = stage2::exists(source);
    if (!present) return with_context(present.error());
    if (*present) {
      auto copied = copier.copy(i, source, fmt::format("{}/data/{}", building, i));
      if (!copied) return with_context(copied.error());
    }
    entries.push_back(ManifestEntry{paths[i], *present});
  }
  // Every copy durable before the manifest declares the snapshot complete.
  if (auto synced = stage2::sync_file_system(building); !synced) {
    return with_context(synced.error());
  }
  if (auto written = stage2::write_manifest(building, entries); !written) {
    return with_context(written.error());
  }

  auto had_snapshot = stage2::exists(final_dir);
  if (!had_snapshot) return with_context(had_snapshot.error());
  Expected<void> placed = *had_snapshot ? replace_path(building, final_dir, building + ".old")
                                        : rename_path(building, final_dir);
  if (!placed) return with_context(placed.error());
  if (auto synced = stage2::sync_directory(backups_dir_); !synced) {
    return with_context(synced.error());
  }
  return {};
}

Expected<void> FileBackupStore::discard(std::string_view migration_id) {
  BOOTSTATE_TRY(check_migration_id(migration_id));
  auto removed = remove_tree(snapshot_dir(migration_id));
  if (removed) removed = remove_tree(fmt::format("{}/.{}.tmp", backups_dir_, migration_id));
  if (!removed) {
    return removed.error().with_context(
        fmt::format("discard of backup of migration {}", migration_id));
  }
  auto present = stage2::exists(backups_dir_);
  if (present && *present) return stage2::sync_directory(backups_dir_);
  return {};
}

}  // namespace bootstate

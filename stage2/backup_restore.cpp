// FileBackupStore::restore: puts snapshots back without destroying what was written since
// (displace.hpp) and without following a symlink the snapshot did not have.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/directory.hpp"
#include "core/paths.hpp"
#include "stage2/backup.hpp"
#include "stage2/backup_manifest.hpp"
#include "stage2/displace.hpp"
#include "stage2/fd.hpp"
#include "stage2/tree_copy.hpp"

namespace bootstate {

namespace {

using stage2::Fd;
using stage2::ManifestEntry;

Error io_error(std::string_view what, const std::string& path, int error) {
  return make_error(ErrorCode::Io, "cannot {} {}: {}", what, path, errno_text(error));
}

std::string via_fd(int parent, const std::string& name) {
  return fmt::format("/proc/self/fd/{}/{}", parent, name);
}

// A symlink that only root could have made or replaced (owned by root, in a directory owned by
// root that no one else may write): part of the system's layout, not something planted.
bool trusted_link(int directory, const std::string& name) {
  struct stat link {};
  struct stat holder {};
  return ::fstatat(directory, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISLNK(link.st_mode) && link.st_uid == 0 && ::fstat(directory, &holder) == 0 &&
         holder.st_uid == 0 && (holder.st_mode & 022) == 0;
}

// Opens the directory holding `path` (absolute, checked) below `root`, component by component
// without following symlinks except trusted ones; creates missing directories when `create`.
// An invalid Fd when a directory is missing and not `create`.
Expected<Fd> open_parent(const std::string& root, const std::string& path, bool create) {
  const std::string top = root.empty() ? "/" : root;
  Fd current(::open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current.valid()) return io_error("open directory", top, errno);
  std::string shown = stage2::under_root(root, "");
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) return current;  // the rest is the final name
    const std::string name = path.substr(start, slash - start);
    shown += "/" + name;
    start = slash + 1;
    if (create && ::mkdirat(current.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      return io_error("create directory", shown, errno);
    }
    Fd next(::openat(current.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid() && errno == ENOENT) return Fd();
    if (!next.valid() && (errno == ELOOP || errno == ENOTDIR) &&
        trusted_link(current.get(), name)) {
      next.reset(::openat(current.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else if (!next.valid() && (errno == ELOOP || errno == ENOTDIR)) {
      return make_error(ErrorCode::InvalidInput,
                        "{} is a symlink or not a directory, and the backup has no link there: "
                        "not followed, nothing restored below it",
                        shown);
    }
    if (!next.valid()) return io_error("open directory", shown, errno);
    current = std::move(next);
  }
}

// Sibling names for restore, of fixed length so that a long file name cannot overflow NAME_MAX.
std::string sibling(std::string_view kind, const std::string& name) {
  return fmt::format(".bootstate-{}-{}", kind, text_digest(name));
}

Expected<void> sync_fd(int fd, const std::string& shown) {
  if (::fsync(fd) != 0) return io_error("fsync directory", shown, errno);
  return {};
}

// Puts `fresh` at `name` in `parent`, atomically where the file system can exchange two names;
// the old object (already emptied of anything new by the displacement) is then removed.
Expected<void> replace_at(int parent, const std::string& fresh, const std::string& name,
                          const std::string& aside) {
  if (::renameat2(parent, fresh.c_str(), parent, name.c_str(), RENAME_EXCHANGE) == 0) {
    return remove_tree(via_fd(parent, fresh));
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return io_error("exchange " + fresh + " with", via_fd(parent, name), errno);
  }
  if (::renameat(parent, name.c_str(), parent, aside.c_str()) != 0) {
    return io_error("rename", via_fd(parent, name), errno);
  }
  if (::renameat(parent, fresh.c_str(), parent, name.c_str()) != 0) {
    return io_error("rename", via_fd(parent, fresh), errno);
  }
  return remove_tree(via_fd(parent, aside));
}

}  // namespace

std::string FileBackupStore::displaced_dir(std::uint64_t attempt,
                                           std::string_view migration_id) const {
  const auto slash = backups_dir_.rfind('/');
  const std::string data = slash == std::string::npos ? "." : backups_dir_.substr(0, slash);
  return fmt::format("{}/displaced/{}/{}", data, attempt, migration_id);
}

Expected<std::vector<std::string>> FileBackupStore::restore(std::string_view migration_id,
                                                            std::uint64_t attempt) {
  if (migration_id.empty() || migration_id == "." || migration_id == ".." ||
      migration_id.find('/') != std::string_view::npos) {
    return make_error(ErrorCode::InvalidInput, "backup: \"{}\" is not a valid migration id",
                      migration_id);
  }
  std::vector<std::string> moved;
  auto restored =
      restore_entries(snapshot_dir(migration_id), displaced_dir(attempt, migration_id), moved);
  if (!restored) {
    return restored.error().with_context(fmt::format("restore of migration {}", migration_id));
  }
  return moved;
}

Expected<void> FileBackupStore::restore_entries(const std::string& directory,
                                                const std::string& displaced,
                                                std::vector<std::string>& moved) {
  auto entries = stage2::read_manifest(directory);
  if (!entries) return entries.error();
  stage2::TreeCopier copier(entries->size());
  // Kept open to the end: the copier names earlier entries' files through their descriptors
  // (hard links between backed-up paths).
  std::vector<Fd> parents;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const ManifestEntry& entry = (*entries)[i];
    BOOTSTATE_TRY(stage2::check_backup_path(entry.path));
    const std::string shown = stage2::under_root(root_, entry.path);
    const std::string name = entry.path.substr(entry.path.rfind('/') + 1);
    const std::string fresh = sibling("restore", name);
    const std::string aside = sibling("old", name);
    const std::string data = fmt::format("{}/data/{}", directory, i);

    auto parent = open_parent(root_, entry.path, entry.present);
    if (!parent) return parent.error();
    if (!parent->valid()) continue;  // absent then, and its directory is gone now: nothing to do
    const int at = parent->get();
    parents.push_back(std::move(*parent));
    // Left over by an interrupted restore: an incomplete copy, or an emptied replaced object
    // (the displacement ran before every exchange).
    BOOTSTATE_TRY(remove_tree(via_fd(at, fresh)));
    BOOTSTATE_TRY(remove_tree(via_fd(at, aside)));

    // Nothing lost: what differs from the snapshot goes to the displaced directory first.
    stage2::Displacer displacer(displaced + entry.path, shown);
    BOOTSTATE_TRY(displacer.displace(at, name, entry.present ? data : std::string()));
    if (!displacer.moved().empty()) {
      BOOTSTATE_TRY(stage2::sync_file_system(displaced));
      moved.insert(moved.end(), displacer.moved().begin(), displacer.moved().end());
    }

    struct stat status {};
    const bool target_exists = ::fstatat(at, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0;
    if (!target_exists && errno != ENOENT) return io_error("inspect", shown, errno);
    if (!entry.present) {
      if (!target_exists) continue;
      // Renamed away first so the path is gone at once, even if removing the tree is cut short.
      if (::renameat(at, name.c_str(), at, aside.c_str()) != 0) {
        return io_error("rename", shown, errno);
      }
      BOOTSTATE_TRY(sync_fd(at, shown));
      BOOTSTATE_TRY(remove_tree(via_fd(at, aside)));
      continue;
    }
    BOOTSTATE_TRY(copier.copy(i, data, via_fd(at, fresh)));
    if (::syncfs(at) != 0) return io_error("sync the file system of", shown, errno);
    if (target_exists) {
      BOOTSTATE_TRY(replace_at(at, fresh, name, aside));
    } else if (::renameat(at, fresh.c_str(), at, name.c_str()) != 0) {
      return io_error("rename", via_fd(at, fresh), errno);
    }
    copier.moved(i, via_fd(at, name));
    BOOTSTATE_TRY(sync_fd(at, shown));
  }
  return {};
}

}  // namespace bootstate

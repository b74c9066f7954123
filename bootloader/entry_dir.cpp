#include "bootloader/entry_dir.hpp"

#include "bootloader/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2 (glibc ≥ 2.28, _GNU_SOURCE)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace bootstate {
namespace {

bool exists_at(int dir_fd, const std::string& name) {
  return ::faccessat(dir_fd, name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

// True when the error says the file system does not implement the operation (as opposed to
// the operation failing on this file).
bool not_supported(int error_number) {
  return error_number == EINVAL || error_number == ENOSYS || error_number == EOPNOTSUPP ||
         error_number == ENOTTY || error_number == EPERM;
}

// One no-replace rename; returns 0 or an errno value. Always a single rename(2), so a power
// cut leaves the old name or the new one. (A link+unlink fallback was removed: cut between
// the two, it left both names, i.e. two files of one entry that systemd-boot lists twice and
// bootstate refuses to choose between.)
int rename_noreplace_at(int dir_fd, const std::string& from, const std::string& to) {
  if (::renameat2(dir_fd, from.c_str(), dir_fd, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (!not_supported(errno) || errno == EPERM) return errno;
  // No RENAME_NOREPLACE on this file system: check, then rename. The window is acceptable
  // because only bootstate and systemd-bless-boot rename entries, and never at the same time.
  if (exists_at(dir_fd, to)) return EEXIST;
  if (::renameat(dir_fd, from.c_str(), dir_fd, to.c_str()) < 0) return errno;
  return 0;
}

}  // namespace

Expected<std::vector<EntryFile>> list_entry_files(const std::string& directory) {
  std::vector<EntryFile> files;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return files;
    return make_error(ErrorCode::Io, "opendir {}: {}", directory, errno_text(errno));
  }
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string file_name = entry->d_name;
    // Hidden files are never entries (systemd-boot skips them, and so do editors' temp files).
    if (file_name.empty() || file_name.front() == '.') continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    if (auto name = parse_entry_name(file_name)) files.push_back({file_name, std::move(*name)});
  }
  const int saved_errno = errno;
  ::closedir(dir);
  if (saved_errno != 0) {
    return make_error(ErrorCode::Io, "readdir {}: {}", directory, errno_text(saved_errno));
  }
  std::sort(files.begin(), files.end(),
            [](const EntryFile& a, const EntryFile& b) { return a.file_name < b.file_name; });
  return files;
}

std::vector<EntryFile> entry_variants(const std::vector<EntryFile>& files, std::string_view id,
                                      std::string_view suffix) {
  std::vector<EntryFile> variants;
  for (const auto& file : files) {
    if (same_entry_id(file.name.id, id) && same_entry_id(file.name.suffix, suffix)) {
      variants.push_back(file);
    }
  }
  return variants;
}

Expected<EntryFile> choose_current_file(const std::vector<EntryFile>& variants,
                                        const std::optional<std::string>& preferred,
                                        std::string_view id, std::string_view directory) {
  if (preferred) {
    for (const auto& file : variants) {
      if (file.file_name == *preferred) return file;
    }
  }
  if (variants.size() == 1) return variants.front();
  if (variants.empty()) {
    return make_error(ErrorCode::NotFound, "no file of entry \"{}\" in {}", id, directory);
  }
  std::string names;
  for (const auto& file : variants) names += (names.empty() ? "" : ", ") + file.file_name;
  return make_error(ErrorCode::Failed,
                    "{} holds several files of entry \"{}\" ({}); refusing to guess which one "
                    "the boot loader uses",
                    directory, id, names);
}

Expected<RenameOutcome> rename_entry_file(const std::string& directory, const std::string& from,
                                          const std::string& to) {
  UniqueFd dir_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    return make_error(ErrorCode::Io, "open {}: {}", directory, errno_text(errno));
  }
  if (from == to) {
    if (exists_at(dir_fd.get(), to)) return RenameOutcome::AlreadyDone;
    return make_error(ErrorCode::NotFound, "{}/{}: {}", directory, to, errno_text(ENOENT));
  }
  const int error = rename_noreplace_at(dir_fd.get(), from, to);
  if (error == ENOENT || error == EEXIST) {
    // Someone (systemd-bless-boot, an earlier interrupted run) may have done it already.
    if (!exists_at(dir_fd.get(), from) && exists_at(dir_fd.get(), to)) {
      return RenameOutcome::AlreadyDone;
    }
  }
  if (error != 0) {
    return make_error(error == ENOENT ? ErrorCode::NotFound : ErrorCode::Failed,
                      "rename {}/{} to {}: {}", directory, from, to, errno_text(error));
  }
  if (::fsync(dir_fd.get()) < 0) {
    return make_error(ErrorCode::Io, "fsync {} after renaming {} to {}: {}", directory, from, to,
                      errno_text(errno));
  }
  if (::syncfs(dir_fd.get()) < 0) {
    return make_error(ErrorCode::Io, "syncfs {} after renaming {} to {}: {}", directory, from, to,
                      errno_text(errno));
  }
  return RenameOutcome::Renamed;
}

}  // namespace bootstate

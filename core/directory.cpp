#include "core/directory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace bootstate {

Expected<std::vector<std::string>> list_directory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    const int error = errno;
    return make_error(error == ENOENT || error == ENOTDIR ? ErrorCode::NotFound : ErrorCode::Io,
                      "cannot list {}: {}", path, errno_text(error));
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error = errno;
  ::closedir(dir);
  if (error != 0) return make_error(ErrorCode::Io, "cannot list {}: {}", path, errno_text(error));
  return names;
}

Expected<void> make_directories(const std::string& path, mode_t mode) {
  struct stat status {};
  // Usually it is there already (the run lock's /run/bootstate): one call, not one per parent.
  if (::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) return {};
  // Each prefix ending before a '/', then the whole path; EEXIST is fine if it is a directory.
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return make_error(ErrorCode::Io, "cannot create {}: {}", prefix, errno_text(errno));
    }
    if (end == std::string::npos) break;
  }
  if (::stat(path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
    return make_error(ErrorCode::Io, "cannot create {}: {}", path, errno_text(ENOTDIR));
  }
  return {};
}

namespace {

// nftw's callback has no user pointer; one removal at a time per thread.
thread_local int remove_errno = 0;
thread_local std::string remove_failed_at;

int remove_one(const char* path, const struct stat*, int type, struct FTW*) {
  const bool directory = type == FTW_DP || type == FTW_DNR;
  const int result = directory ? ::rmdir(path) : ::unlink(path);
  if (result != 0 && errno != ENOENT) {
    remove_errno = errno;
    remove_failed_at = path;
    return 1;  // stops the walk
  }
  return 0;
}

}  // namespace

Expected<void> remove_tree(const std::string& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) return {};
    return make_error(ErrorCode::Io, "cannot remove {}: {}", path, errno_text(errno));
  }
  // FTW_DEPTH: contents before their directory; FTW_PHYS: links are not followed.
  remove_errno = 0;
  const int walked = ::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
  if (walked != 0) {
    const int error = remove_errno != 0 ? remove_errno : errno;
    const std::string where = remove_errno != 0 ? remove_failed_at : path;
    remove_failed_at.clear();
    return make_error(ErrorCode::Io, "cannot remove {}: {}", where, errno_text(error));
  }
  return {};
}

}  // namespace bootstate

#include "stage2/safe_dirs.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

namespace bootstate::stage2 {

Expected<Fd> open_directory_at(int parent, const std::string& name, bool create, mode_t mode,
                               const std::string& shown) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return make_error(ErrorCode::InvalidInput, "{}: \"{}\" is not a plain directory name", shown,
                      name);
  }
  if (create && ::mkdirat(parent, name.c_str(), mode) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::Io, "cannot create directory {}: {}", shown, errno_text(errno));
  }
  Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) return fd;
  const int error = errno;
  struct stat status {};
  if (::fstatat(parent, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(status.st_mode)) {
    return make_error(ErrorCode::InvalidInput,
                      "{} is a symlink; bootstate does not follow it (remove it to continue)",
                      shown);
  }
  if (error == ENOTDIR) {
    return make_error(ErrorCode::InvalidInput, "{} is not a directory", shown);
  }
  return make_error(ErrorCode::Io, "cannot open directory {}: {}", shown, errno_text(error));
}

Expected<Fd> make_directories_below(const std::string& base, std::string_view relative,
                                    mode_t mode) {
  Fd current(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current.valid()) {
    return make_error(ErrorCode::Io, "cannot open directory {}: {}", base, errno_text(errno));
  }
  std::string shown = base;
  std::size_t start = 0;
  while (start <= relative.size()) {
    std::size_t slash = relative.find('/', start);
    if (slash == std::string_view::npos) slash = relative.size();
    const std::string name(relative.substr(start, slash - start));
    shown += "/" + name;
    auto next = open_directory_at(current.get(), name, true, mode, shown);
    if (!next) return next.error();
    current = std::move(*next);
    start = slash + 1;
  }
  return current;
}

}  // namespace bootstate::stage2

#include "core/read_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace bootstate {
namespace {

std::string_view file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

Expected<std::string> read_regular(const std::string& path, int extra_flags, std::size_t limit) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (a plan
  // that is a FIFO hung the boot, issue 13 item 12); it is refused below instead.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | extra_flags);
  if (fd < 0) {
    const int error = errno;
    if (error == ELOOP && (extra_flags & O_NOFOLLOW) != 0) {
      return make_error(ErrorCode::InvalidInput,
                        "cannot read {}: it is a symbolic link, not followed", path);
    }
    return make_error(error == ENOENT || error == ENOTDIR ? ErrorCode::NotFound : ErrorCode::Io,
                      "cannot read {}: {}", path, errno_text(error));
  }
  struct stat status {};
  if (stat_descriptor(fd, status) != 0 || !S_ISREG(status.st_mode)) {
    const int error = errno;
    const mode_t mode = status.st_mode;
    ::close(fd);
    if (mode == 0) return make_error(ErrorCode::Io, "cannot stat {}: {}", path, errno_text(error));
    return make_error(ErrorCode::InvalidInput, "cannot read {}: it is {}, not a regular file", path,
                      file_type(mode));
  }
  // Read into the string itself, sized from fstat (plus one byte to see the end): a plan of
  // 1,000 migrations is 300 KB, 75 reads of a page and the copies of a growing string. /proc
  // files report no size: they start with a page.
  std::string text(status.st_size > 0 ? static_cast<std::size_t>(status.st_size) + 1 : 4096, '\0');
  std::size_t used = 0;
  for (;;) {
    if (used == text.size()) text.resize(2 * used);
    const ssize_t got = ::read(fd, text.data() + used, text.size() - used);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      ::close(fd);
      return make_error(ErrorCode::Io, "cannot read {}: {}", path, errno_text(error));
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
    if (used >= limit) {
      used = limit;
      break;
    }
  }
  text.resize(used);
  ::close(fd);
  return text;
}

}  // namespace

Expected<std::string> read_file(const std::string& path) {
  return read_regular(path, 0, std::string::npos);
}

Expected<std::string> read_untrusted_file(const std::string& path, std::size_t limit) {
  return read_regular(path, O_NOFOLLOW, limit);
}

}  // namespace bootstate

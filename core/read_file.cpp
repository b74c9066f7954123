#include "core/read_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace bootstate {

Expected<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int error = errno;
    return make_error(error == ENOENT || error == ENOTDIR ? ErrorCode::NotFound : ErrorCode::Io,
                      "cannot read {}: {}", path, errno_text(error));
  }
  std::string text;
  char buffer[4096];  // one page: /proc files report no size, so no fstat-sized read
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      ::close(fd);
      return make_error(ErrorCode::Io, "cannot read {}: {}", path, errno_text(error));
    }
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return text;
}

}  // namespace bootstate

// flock(2) with a bounded wait. Polled with LOCK_NB rather than a blocking flock under alarm():
// a signal handler would be process-wide state, and a 50 ms poll costs nothing next to a phase.
#include "core/store_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include "core/directory.hpp"
#include "core/read_file.hpp"
#include "core/utc_time.hpp"

namespace bootstate {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(50);
// The holder's text is written as one fixed-size record, padded with NULs, so that a shorter
// text needs no ftruncate: on a disk file system that costs half a millisecond (ext4, measured),
// more than the rest of an idle phase.
constexpr std::size_t kHolderBytes = 256;

// What the holder wrote into the lock file and, from the file's modification time, since when:
// the holder writes no time itself, or every idle phase would read the clock for nobody (two
// page faults, the vDSO's data). "an unknown process" when it has not written yet.
std::string read_holder(int fd) {
  char buffer[kHolderBytes + 1];
  const ssize_t got = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string text = got > 0 ? std::string(buffer, static_cast<std::size_t>(got)) : "";
  text.resize(std::min(text.size(), text.find('\0')));  // the record's padding
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  if (text.empty()) return "an unknown process";
  // "pid N (what)" becomes "pid N (what, since T)", the form docs/DESIGN.md gives. A text that
  // already names a time (an older bootstate wrote it) is shown as written.
  struct stat written {};
  if (text.back() == ')' && text.find(", since ") == std::string::npos &&
      stat_descriptor(fd, written) == 0) {
    text.insert(text.size() - 1, ", since " + utc_text(written.st_mtim.tv_sec));
  }
  return text;
}

}  // namespace

bool store_lock_held(const std::string& path) {
  struct stat lock {};
  if (::lstat(path.c_str(), &lock) != 0) return false;
  auto locks = read_file("/proc/locks");
  if (!locks) return true;  // cannot tell: as if held (a reader waits or reads again, no more)
  // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF": device major:minor (hex) and inode.
  const std::string file =
      fmt::format(" {:02x}:{:02x}:{} ", major(lock.st_dev), minor(lock.st_dev), lock.st_ino);
  std::size_t line_start = 0;
  while (line_start < locks->size()) {
    std::size_t line_end = locks->find('\n', line_start);
    if (line_end == std::string::npos) line_end = locks->size();
    std::string_view line(locks->data() + line_start, line_end - line_start);
    if (line.find(" FLOCK ") != std::string_view::npos &&
        line.find(file) != std::string_view::npos) {
      return true;
    }
    line_start = line_end + 1;
  }
  return false;
}

Expected<StoreLock> StoreLock::acquire(const std::string& path, std::string_view holder,
                                       std::chrono::milliseconds wait,
                                       const std::function<void(const std::string&)>& waiting) {
  const std::size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    BOOTSTATE_TRY(make_directories(path.substr(0, slash)));
  }
  // No symlink, no FIFO: O_NONBLOCK keeps the open itself from hanging on a FIFO.
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == ELOOP) {
      return make_error(ErrorCode::InvalidInput, "lock file {} is a symbolic link: refusing it",
                        path);
    }
    return make_error(ErrorCode::Io, "cannot open the lock file {}: {}", path, errno_text(error));
  }
  StoreLock lock(fd);
  struct stat status {};
  if (stat_descriptor(fd, status) != 0 || !S_ISREG(status.st_mode)) {
    return make_error(ErrorCode::InvalidInput, "lock file {} is not a regular file", path);
  }

  // The clock is read only once the lock is found busy: an uncontended run never reads it.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  bool told = false;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      return make_error(ErrorCode::Io, "cannot lock {}: {}", path, errno_text(errno));
    }
    if (!deadline) deadline = std::chrono::steady_clock::now() + wait;
    if (std::chrono::steady_clock::now() >= *deadline) {
      return make_error(ErrorCode::InvalidInput,
                        "the state store is in use: {} is held by {}; nothing was changed, try "
                        "again when it has finished",
                        path, read_holder(fd));
    }
    if (!told && waiting) waiting(read_holder(fd));
    told = true;
    std::this_thread::sleep_for(kPoll);
  }
  // Informational only (the flock is the lock): who holds it, for a waiter's message.
  std::string text = fmt::format("pid {} ({})\n", ::getpid(), std::string(holder));
  text.resize(kHolderBytes, '\0');
  (void)!::pwrite(fd, text.data(), text.size(), 0);
  return lock;
}

StoreLock::StoreLock(StoreLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

StoreLock::~StoreLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace bootstate

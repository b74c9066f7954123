// POSIX file I/O for the two slot files. Every error names the path and errno text, because on
// an ESP the interesting failures are EROFS (mounted read-only after a FAT error), ENOSPC and
// EIO, and the operator has to know which file.
#include "core/slot_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace bootstate {
namespace {

// Closes on scope exit; close() errors on a read-only descriptor carry no information.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // Closes now so a deferred write error (NFS-like, or FAT's delayed allocation) is reported.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

Error io_error(std::string_view what, const std::string& path, int error_number) {
  return make_error(ErrorCode::Io, "{} {}: {}", what, path, errno_text(error_number));
}

Expected<void> check_slot(int slot) {
  if (slot != 0 && slot != 1) {
    return make_error(ErrorCode::InvalidInput, "state slot {} does not exist (0 or 1)", slot);
  }
  return {};
}

// Makes a new or renamed entry in `directory` durable.
Expected<void> sync_directory(const std::string& directory) {
  Fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return io_error("open directory", directory, errno);
  if (::fsync(fd.get()) != 0) return io_error("fsync directory", directory, errno);
  return {};
}

}  // namespace

SlotFiles::SlotFiles(std::string directory) : directory_(std::move(directory)) {}

std::string SlotFiles::slot_path(int slot) const {
  return fmt::format("{}/state.{}", directory_, slot);
}

Expected<std::optional<std::string>> SlotFiles::read(int slot) {
  BOOTSTATE_TRY(check_slot(slot));
  const std::string path = slot_path(slot);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return io_error("open", path, errno);
  }
  // Read straight into a string of the file's size (one more byte to see the end in the same
  // read): a slot holds megabytes with 1,000 migrations, and growing a string 64 KiB at a time
  // copied it over and over (docs/PERFORMANCE.md "(b)").
  struct stat status {};
  const std::size_t expected = ::fstat(fd.get(), &status) == 0 && status.st_size > 0
                                   ? static_cast<std::size_t>(status.st_size)
                                   : 0;
  std::string contents(expected + 1, '\0');
  std::size_t size = 0;
  for (;;) {
    if (size == contents.size()) contents.resize(2 * size);
    const ssize_t count = ::read(fd.get(), contents.data() + size, contents.size() - size);
    if (count < 0) {
      if (errno == EINTR) continue;
      return io_error("read", path, errno);
    }
    if (count == 0) break;
    size += static_cast<std::size_t>(count);
  }
  contents.resize(size);
  return std::optional<std::string>(std::move(contents));
}

Expected<void> SlotFiles::ensure_directory(bool& created) {
  created = false;
  if (::mkdir(directory_.c_str(), 0700) == 0) {
    created = true;
    return {};
  }
  if (errno == EEXIST) return {};
  return io_error("create directory", directory_, errno);
}

Expected<void> SlotFiles::write(int slot, std::string_view bytes) {
  BOOTSTATE_TRY(check_slot(slot));
  const std::string path = slot_path(slot);

  bool created = false;
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) {
    bool directory_created = false;
    BOOTSTATE_TRY(ensure_directory(directory_created));
    if (directory_created) {
      // The new directory's own entry lives in the parent (the ESP root); sync it too.
      const auto slash = directory_.find_last_of('/');
      const std::string parent = slash == std::string::npos ? std::string(".")
                                 : slash == 0               ? std::string("/")
                                                            : directory_.substr(0, slash);
      BOOTSTATE_TRY(sync_directory(parent));
    }
    fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    created = true;
  }
  if (fd.get() < 0) return io_error("open", path, errno);

  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t count =
        ::pwrite(fd.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (count < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    done += static_cast<std::size_t>(count);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes.size())) != 0) {
    return io_error("truncate", path, errno);
  }
  // The one flush per commit: data and the size the file now has.
  if (::fdatasync(fd.get()) != 0) return io_error("fdatasync", path, errno);
  if (fd.close() != 0) return io_error("close", path, errno);
  if (created) BOOTSTATE_TRY(sync_directory(directory_));
  return {};
}

bool SlotFiles::has_moved_aside() const {
  for (int slot = 0; slot < 2; ++slot) {
    struct stat status {};
    if (::lstat((slot_path(slot) + ".broken").c_str(), &status) == 0) return true;
  }
  return false;
}

Expected<void> SlotFiles::move_aside() {
  bool moved = false;
  for (int slot = 0; slot < 2; ++slot) {
    const std::string path = slot_path(slot);
    const std::string broken = path + ".broken";
    if (::rename(path.c_str(), broken.c_str()) == 0) {
      moved = true;
      continue;
    }
    if (errno == ENOENT) continue;
    return make_error(ErrorCode::Io, "rename {} to {}: {}", path, broken, errno_text(errno));
  }
  if (moved) BOOTSTATE_TRY(sync_directory(directory_));
  return {};
}

}  // namespace bootstate

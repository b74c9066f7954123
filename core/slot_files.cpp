// POSIX file I/O for the two slot files. Every error names the path and errno text, because on
// an ESP the interesting failures are EROFS (mounted read-only after a FAT error), ENOSPC and
// EIO, and the operator has to know which file.
#include "core/slot_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/read_file.hpp"
#include "core/store_idle.hpp"

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
  int release() { return std::exchange(fd_, -1); }
  // Closes now so a deferred write error (NFS-like, or FAT's delayed allocation) is reported.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

Error io_error(std::string_view what, const std::string& path, int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) {
    return make_error(ErrorCode::Io, "{} {}: {} (the ESP is full)", what, path,
                      errno_text(error_number));
  }
  return make_error(ErrorCode::Io, "{} {}: {}", what, path, errno_text(error_number));
}

// Up to `limit` bytes from the start of `fd` (left open) into `contents`, whose buffer is reused.
Expected<void> read_at_start(int fd, const std::string& path, std::size_t limit,
                             std::string& contents) {
  contents.resize(limit);
  std::size_t size = 0;
  while (size < limit) {
    const ssize_t count =
        ::pread(fd, contents.data() + size, limit - size, static_cast<off_t>(size));
    if (count < 0) {
      if (errno == EINTR) continue;
      return io_error("read", path, errno);
    }
    if (count == 0) break;
    size += static_cast<std::size_t>(count);
  }
  contents.resize(size);
  return {};
}

Expected<void> check_slot(int slot) {
  if (slot != 0 && slot != 1) {
    return make_error(ErrorCode::InvalidInput, "state slot {} does not exist (0 or 1)", slot);
  }
  return {};
}

// A regular file (or directory) owned by the user bootstate runs as: another owner could have
// put or changed it, so its content cannot be trusted, nor written through.
Expected<void> check_owned(int fd, const std::string& path, bool directory) {
  struct stat status {};
  if (stat_descriptor(fd, status) != 0) return io_error("stat", path, errno);
  if (directory ? !S_ISDIR(status.st_mode) : !S_ISREG(status.st_mode)) {
    return make_error(ErrorCode::InvalidInput, "{} is not a {}: refusing to use it", path,
                      directory ? "directory" : "regular file");
  }
  if (status.st_uid != ::geteuid()) {
    return make_error(ErrorCode::InvalidInput,
                      "{} is owned by uid {}, not by uid {} (root): refusing to trust it", path,
                      status.st_uid, ::geteuid());
  }
  return {};
}

Error open_error(const std::string& path, int error_number) {
  if (error_number == ELOOP) {
    return make_error(ErrorCode::InvalidInput, "{} is a symbolic link: refusing to follow it",
                      path);
  }
  return io_error("open", path, error_number);
}

std::string parent_of(const std::string& directory) {
  const auto slash = directory.find_last_of('/');
  return slash == std::string::npos ? std::string(".")
         : slash == 0               ? std::string("/")
                                    : directory.substr(0, slash);
}

// Makes a new or renamed entry in `directory` durable.
Expected<void> sync_directory(int fd, const std::string& directory) {
  if (::fsync(fd) != 0) return io_error("fsync directory", directory, errno);
  return {};
}

std::string slot_name(int slot) {
  return slot == 0 ? "state.0" : "state.1";
}

}  // namespace

SlotFiles::SlotFiles(std::string directory) : directory_(std::move(directory)) {}

SlotFiles::~SlotFiles() {
  if (directory_fd_ >= 0) ::close(directory_fd_);
}

std::string SlotFiles::slot_path(int slot) const {
  return fmt::format("{}/state.{}", directory_, slot);
}

Expected<int> SlotFiles::directory_fd(bool create, int slot) {
  if (directory_fd_ >= 0) return directory_fd_;
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::open(directory_.c_str(), flags);
  if (fd < 0 && errno == ENOENT && create) {
    if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST) {
      return io_error("create directory", directory_, errno);
    }
    // The new directory's own entry lives in the parent (the ESP root); sync it too.
    const std::string parent = parent_of(directory_);
    Fd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (parent_fd.get() < 0) return io_error("open directory", parent, errno);
    BOOTSTATE_TRY(sync_directory(parent_fd.get(), parent));
    fd = ::open(directory_.c_str(), flags);
  }
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {
      return make_error(ErrorCode::NotFound, "{}: {}", directory_, errno_text(error));
    }
    // O_NOFOLLOW|O_DIRECTORY on a symlink: ENOTDIR (or ELOOP); say which it is.
    struct stat status {};
    if (::lstat(directory_.c_str(), &status) == 0 && S_ISLNK(status.st_mode)) {
      return open_error(directory_, ELOOP);
    }
    // Named as the slot, which is what could not be opened (ENOTDIR: DIR is a file).
    return io_error("open", slot_path(slot), error);
  }
  Fd checked(fd);
  BOOTSTATE_TRY(check_owned(fd, directory_, true));
  directory_fd_ = checked.release();  // kept for the next slot: one check per process
  return directory_fd_;
}

Expected<std::optional<std::string>> SlotFiles::read(int slot) {
  std::string contents;
  auto found = read_into(slot, contents);
  if (!found) return found.error();
  if (!*found) return std::optional<std::string>();
  return std::optional<std::string>(std::move(contents));
}

Expected<int> SlotFiles::open_for_reading(int slot) {
  BOOTSTATE_TRY(check_slot(slot));
  const std::string path = slot_path(slot);
  auto directory = directory_fd(false, slot);
  if (!directory) {
    if (directory.error().code == ErrorCode::NotFound) return -1;
    return directory.error();
  }
  // O_NONBLOCK: a FIFO put in the slot's place opens at once and is then refused, never hangs.
  Fd fd(::openat(*directory, slot_name(slot).c_str(),
                 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return -1;
    return open_error(path, errno);
  }
  BOOTSTATE_TRY(check_owned(fd.get(), path, false));
  return fd.release();
}

Expected<bool> SlotFiles::read_into(int slot, std::string& contents) {
  auto opened = open_for_reading(slot);
  if (!opened) return opened.error();
  if (*opened < 0) return false;
  Fd fd(*opened);
  // Read straight into a string of the file's size (one more byte to see the end in the same
  // read): a slot holds megabytes with 1,000 migrations, and growing a string 64 KiB at a time
  // copied it over and over (docs/PERFORMANCE.md "(b)"). A file that grew meanwhile (a
  // status reading while a run commits) is read again with twice the room.
  struct stat status {};
  std::size_t limit = stat_descriptor(fd.get(), status) == 0 && status.st_size > 0
                          ? static_cast<std::size_t>(status.st_size) + 1
                          : 1;
  for (;;) {
    BOOTSTATE_TRY(read_at_start(fd.get(), slot_path(slot), limit, contents));
    if (contents.size() < limit) break;
    limit *= 2;
  }
  return true;
}

namespace {

// A slot file read front to back (SlotStorage::Reader), by read(2) into the caller's buffer.
class SlotFileReader final : public SlotStorage::Reader {
 public:
  SlotFileReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Expected<std::size_t> read(std::span<char> into) override {
    for (;;) {
      const ssize_t count = ::read(fd_.get(), into.data(), into.size());
      if (count >= 0) return static_cast<std::size_t>(count);
      if (errno != EINTR) return io_error("read", path_, errno);
    }
  }

 private:
  Fd fd_;
  std::string path_;
};

}  // namespace

Expected<std::unique_ptr<SlotStorage::Reader>> SlotFiles::open_reader(int slot) {
  auto opened = open_for_reading(slot);
  if (!opened) return opened.error();
  if (*opened < 0) return std::unique_ptr<Reader>();
  return std::unique_ptr<Reader>(std::make_unique<SlotFileReader>(*opened, slot_path(slot)));
}

std::size_t SlotFiles::file_size(int slot) {
  struct stat status {};
  auto directory = directory_fd(false, slot);
  if (check_slot(slot) && directory &&
      ::fstatat(*directory, slot_name(slot).c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(status.st_mode) && status.st_size > 0) {
    return static_cast<std::size_t>(status.st_size);
  }
  return 0;
}

std::size_t SlotFiles::size_to_write(int slot, std::size_t frame_bytes) {
  // The other slot's size counts too: its growth reserved as much for this one (write()).
  const std::size_t current = std::max(file_size(slot), file_size(1 - slot));
  if (frame_bytes <= current) return current;
  const std::size_t grown = frame_bytes + std::max(frame_bytes / 4, kMinimumHeadroom);
  return (grown + kChunk - 1) / kChunk * kChunk;
}

Expected<void> SlotFiles::reserve_other(int slot, std::size_t bytes) {
  const std::string path = slot_path(1 - slot);
  Fd fd(::openat(directory_fd_, slot_name(1 - slot).c_str(),
                 O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) return {};  // missing (first commits) or refused: its own write says why
  if (!check_owned(fd.get(), path, false)) return {};
  if (::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes)) != 0 &&
      errno != EOPNOTSUPP && errno != ENOSYS) {
    return io_error(fmt::format("reserve {} bytes (for the next commit) in", bytes), path, errno);
  }
  return {};
}

Expected<SlotFiles::OpenSlot> SlotFiles::open_for_write(int slot) {
  BOOTSTATE_TRY(check_slot(slot));
  OpenSlot open{slot_path(slot)};
  open.directory_existed = directory_fd_ >= 0;
  if (!open.directory_existed) open.directory_existed = ::access(directory_.c_str(), F_OK) == 0;
  auto directory = directory_fd(true, slot);
  if (!directory) return directory.error();
  // O_RDWR, not O_WRONLY: a FIFO put in the slot's place then opens at once (O_NONBLOCK) and is
  // refused as not a regular file, instead of ENXIO or a wait for a reader.
  open.fd = ::openat(*directory, slot_name(slot).c_str(),
                     O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (open.fd < 0 && errno == ENOENT) {
    open.fd = ::openat(*directory, slot_name(slot).c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
    open.created = true;
  }
  if (open.fd < 0) return open_error(open.path, errno);
  Fd fd(open.fd);
  BOOTSTATE_TRY(check_owned(fd.get(), open.path, false));
  struct stat status {};
  if (stat_descriptor(fd.get(), status) != 0) return io_error("stat", open.path, errno);
  open.size = static_cast<std::size_t>(status.st_size);
  open.inode = status.st_ino;
  open.fd = fd.release();
  return open;
}

Expected<void> SlotFiles::write(int slot, std::string_view bytes) {
  auto opened = open_for_write(slot);
  if (!opened) return opened.error();
  OpenSlot& open = *opened;
  Fd fd(open.fd);
  const std::string& path = open.path;
  const std::size_t current = open.size;

  if (bytes.size() > current) {
    // Reserve the blocks before touching the slot: ENOSPC here leaves it as it was. A file
    // system without fallocate (EOPNOTSUPP; ext2) finds out in pwrite below instead. The other
    // slot gets as much reserved (beyond its end, its bytes unchanged): the next commit, which
    // goes there, then needs no new block either, even when a step has filled the ESP since.
    Expected<void> reserved;
    if (::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes.size())) != 0 &&
        errno != EOPNOTSUPP && errno != ENOSYS) {
      reserved = io_error(
          fmt::format("reserve {} bytes (it has {}) to grow", bytes.size(), current), path, errno);
    }
    if (reserved) reserved = reserve_other(slot, bytes.size());
    if (!reserved) {
      // A slot created just now would stay behind empty (and be reported as torn): remove it.
      if (open.created) (void)::unlinkat(directory_fd_, slot_name(slot).c_str(), 0);
      return reserved.error();
    }
  }
  // Only the pages that differ from what the file holds now are written (issue #17 item 2):
  // the store lays the payload out so that a commit changes few of them, and fdatasync then
  // flushes only those. Read back through the page cache, under the store lock, so the
  // comparison is with the file's real bytes, not with what this process believes it wrote.
  // After a failed write the page cache may hold bytes the disk never got (Linux marks pages
  // clean when their writeback fails): the next write of that slot then writes every page.
  if (distrusted_[slot]) {
    held_.clear();
  } else {
    distrusted_[slot] = true;
    BOOTSTATE_TRY(read_at_start(fd.get(), path, std::min(current, bytes.size()), held_));
  }
  last_read_back_bytes_ = held_.size();
  return write_pages(slot, open, fd.release(), bytes, changed_pages(held_, bytes));
}

Expected<void> SlotFiles::write_changed(int slot, std::string_view bytes,
                                        const std::vector<PageRun>& changed) {
  // Vouched for: this process wrote the slot last, successfully, and it is the same file of
  // the same size. Anything else (a failed write, growth, a file replaced) takes write().
  if (!vouched_[slot] || distrusted_[slot]) return write(slot, bytes);
  auto opened = open_for_write(slot);
  if (!opened) return opened.error();
  Fd fd(opened->fd);
  if (opened->inode != vouched_[slot]->inode || opened->size != vouched_[slot]->size ||
      bytes.size() != opened->size) {
    fd.close();
    return write(slot, bytes);
  }
  last_read_back_bytes_ = 0;
  return write_pages(slot, *opened, fd.release(), bytes, changed);
}

Expected<void> SlotFiles::write_pages(int slot, const OpenSlot& open, int descriptor,
                                      std::string_view bytes, const std::vector<PageRun>& runs) {
  Fd fd(descriptor);
  const std::string& path = open.path;
  distrusted_[slot] = true;
  vouched_[slot].reset();
  last_write_bytes_ = 0;
  for (const PageRun& run : runs) {
    BOOTSTATE_TRY(write_run(fd.get(), path, run.offset, bytes.substr(run.offset, run.size)));
    last_write_bytes_ += run.size;
  }
  if (bytes.size() < open.size && ::ftruncate(fd.get(), static_cast<off_t>(bytes.size())) != 0) {
    return io_error("truncate", path, errno);
  }
  // The one flush per commit: data (and the size, when it changed).
  if (::fdatasync(fd.get()) != 0) return io_error("fdatasync", path, errno);
  distrusted_[slot] = false;
  if (fd.close() != 0) return io_error("close", path, errno);
  if (open.created || !open.directory_existed) {
    BOOTSTATE_TRY(sync_directory(directory_fd_, directory_));
  }
  vouched_[slot] = Vouched{open.inode, bytes.size()};
  ++writes_done_;
  return {};
}

Expected<void> SlotFiles::write_run(int fd, const std::string& path, std::size_t offset,
                                    std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t count =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (count < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    done += static_cast<std::size_t>(count);
  }
  return {};
}

std::vector<PageRun> SlotFiles::changed_pages(std::string_view held, std::string_view bytes) {
  std::vector<PageRun> runs;
  for (std::size_t offset = 0; offset < bytes.size(); offset += kPage) {
    const std::size_t size = std::min(kPage, bytes.size() - offset);
    const bool same =
        offset + size <= held.size() && held.compare(offset, size, bytes.substr(offset, size)) == 0;
    if (same) continue;
    if (!runs.empty() && runs.back().offset + runs.back().size == offset) {
      runs.back().size += size;
    } else {
      runs.push_back({offset, size});
    }
  }
  return runs;
}

Expected<std::optional<int>> SlotFiles::open_checked(const std::string& name) {
  const std::string path = directory_ + "/" + name;
  auto directory = directory_fd(false, 0);
  if (!directory) {
    if (directory.error().code == ErrorCode::NotFound) return std::optional<int>();
    return directory.error();
  }
  Fd fd(::openat(*directory, name.c_str(),
                 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<int>();
    return open_error(path, errno);
  }
  BOOTSTATE_TRY(check_owned(fd.get(), path, false));
  return std::optional<int>(fd.release());
}

namespace {

// Up to `limit` bytes from the start of `fd` (closed afterwards).
Expected<std::optional<std::string>> read_prefix(int descriptor, const std::string& path,
                                                 std::size_t limit) {
  Fd fd(descriptor);
  std::string contents;
  BOOTSTATE_TRY(read_at_start(fd.get(), path, limit, contents));
  return std::optional<std::string>(std::move(contents));
}

constexpr const char* kIdleName = "idle";

}  // namespace

Expected<std::optional<std::string>> SlotFiles::read_head(int slot, std::size_t bytes) {
  BOOTSTATE_TRY(check_slot(slot));
  auto fd = open_checked(slot_name(slot));
  if (!fd) return fd.error();
  if (!fd->has_value()) return std::optional<std::string>();
  return read_prefix(**fd, slot_path(slot), bytes);
}

Expected<std::optional<std::string>> SlotFiles::read_idle_certificate() {
  auto fd = open_checked(kIdleName);
  if (!fd) return fd.error();
  if (!fd->has_value()) return std::optional<std::string>();
  // One byte more than a certificate: a longer file is not one.
  return read_prefix(**fd, directory_ + "/" + kIdleName, kIdleClaimSize + 1);
}

Expected<void> SlotFiles::write_idle_certificate(std::string_view bytes) {
  const std::string path = directory_ + "/" + kIdleName;
  auto directory = directory_fd(false, 0);
  if (!directory) return directory.error();
  bool created = false;
  Fd fd(::openat(*directory, kIdleName, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) {
    fd.reset(::openat(*directory, kIdleName,
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600));
    created = true;
  }
  if (fd.get() < 0) return open_error(path, errno);
  BOOTSTATE_TRY(check_owned(fd.get(), path, false));
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
  if (::fdatasync(fd.get()) != 0) return io_error("fdatasync", path, errno);
  if (fd.close() != 0) return io_error("close", path, errno);
  if (created) BOOTSTATE_TRY(sync_directory(*directory, directory_));
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
  vouched_ = {};
  auto directory = directory_fd(false, 0);
  if (!directory) {
    if (directory.error().code == ErrorCode::NotFound) return {};
    return directory.error();
  }
  bool moved = false;
  for (int slot = 0; slot < 2; ++slot) {
    const std::string name = slot_name(slot);
    const std::string broken = name + ".broken";
    if (::renameat(*directory, name.c_str(), *directory, broken.c_str()) == 0) {
      moved = true;
      continue;
    }
    if (errno == ENOENT) continue;
    return make_error(ErrorCode::Io, "rename {} to {}.broken: {}", slot_path(slot), slot_path(slot),
                      errno_text(errno));
  }
  // The certificate named a slot that is gone: a fresh store must not inherit it (its sequence
  // numbers start again, and the certificate also names the checksum, but gone is clearer).
  if (::unlinkat(*directory, kIdleName, 0) == 0) {
    moved = true;
  } else if (errno != ENOENT) {
    return make_error(ErrorCode::Io, "remove {}/{}: {}", directory_, kIdleName, errno_text(errno));
  }
  if (moved) BOOTSTATE_TRY(sync_directory(*directory, directory_));
  return {};
}

}  // namespace bootstate

#include "stage2/displace.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "core/directory.hpp"
#include "stage2/fd.hpp"
#include "stage2/tree_copy.hpp"

namespace bootstate::stage2 {

namespace {

Error io_error(std::string_view what, const std::string& path, int error) {
  return make_error(ErrorCode::Io, "cannot {} {}: {}", what, path, errno_text(error));
}

// A path naming `name` in the directory open as `parent`, resolved by the kernel through the
// descriptor itself: no component of the directory's own path is looked up again.
std::string via_fd(int parent, const std::string& name) {
  return fmt::format("/proc/self/fd/{}/{}", parent, name);
}

Expected<std::string> read_link_at(int parent, const std::string& name, const std::string& shown) {
  std::array<char, 4097> buffer{};
  ssize_t size = ::readlinkat(parent, name.c_str(), buffer.data(), buffer.size());
  if (size < 0) return io_error("read symlink", shown, errno);
  return std::string(buffer.data(), static_cast<std::size_t>(size));
}

Expected<bool> same_bytes(int current, const std::string& snapshot, const std::string& shown) {
  Fd other(::open(snapshot.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!other.valid()) return io_error("open", snapshot, errno);
  std::array<char, 1 << 15> a{};
  std::array<char, 1 << 15> b{};
  while (true) {
    ssize_t got = ::read(current, a.data(), a.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return io_error("read", shown, errno);
    std::size_t filled = 0;
    while (filled < static_cast<std::size_t>(got)) {
      ssize_t more = ::read(other.get(), b.data() + filled, static_cast<std::size_t>(got) - filled);
      if (more < 0 && errno == EINTR) continue;
      if (more < 0) return io_error("read", snapshot, errno);
      if (more == 0) return false;
      filled += static_cast<std::size_t>(more);
    }
    if (!std::equal(a.begin(), a.begin() + got, b.begin())) return false;
    if (got == 0) {
      char extra = 0;
      return ::read(other.get(), &extra, 1) == 0;
    }
  }
}

Expected<std::vector<std::string>> names_in(int directory, const std::string& shown) {
  int copy = ::dup(directory);
  if (copy < 0) return io_error("read directory", shown, errno);
  DIR* listing = ::fdopendir(copy);
  if (listing == nullptr) {
    ::close(copy);
    return io_error("read directory", shown, errno);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* item = ::readdir(listing)) {
    std::string_view name = item->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error = errno;
  ::closedir(listing);
  if (error != 0) return io_error("read directory", shown, error);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Expected<void> Displacer::displace(int parent, const std::string& name,
                                   const std::string& snapshot) {
  return walk(parent, name, snapshot, "");
}

Expected<void> Displacer::walk(int parent, const std::string& name, const std::string& snapshot,
                               const std::string& relative) {
  const std::string shown = relative.empty() ? shown_ : shown_ + "/" + relative;
  struct stat now {};
  if (::fstatat(parent, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return io_error("inspect", shown, errno);
  }
  struct stat then {};
  bool kept = !snapshot.empty() && ::lstat(snapshot.c_str(), &then) == 0;
  if (!kept && !snapshot.empty() && errno != ENOENT) return io_error("inspect", snapshot, errno);

  bool same = kept && (now.st_mode & S_IFMT) == (then.st_mode & S_IFMT);
  if (same && S_ISDIR(now.st_mode)) {
    Fd directory(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!directory.valid()) return io_error("open directory", shown, errno);
    auto names = names_in(directory.get(), shown);
    if (!names) return names.error();
    for (const auto& child : *names) {
      BOOTSTATE_TRY(walk(directory.get(), child, snapshot + "/" + child,
                         relative.empty() ? child : relative + "/" + child));
    }
    return {};
  }
  if (same && S_ISREG(now.st_mode)) {
    same = now.st_size == then.st_size;
    if (same) {
      Fd current(::openat(parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!current.valid()) return io_error("open", shown, errno);
      auto equal = same_bytes(current.get(), snapshot, shown);
      if (!equal) return equal.error();
      same = *equal;
    }
  } else if (same && S_ISLNK(now.st_mode)) {
    auto target_now = read_link_at(parent, name, shown);
    if (!target_now) return target_now.error();
    auto target_then = read_link_at(AT_FDCWD, snapshot, snapshot);
    if (!target_then) return target_then.error();
    same = *target_now == *target_then;
  } else if (same) {
    same = now.st_rdev == then.st_rdev;  // device nodes; fifos and sockets have none
  }
  if (same) return {};
  return move_out(parent, name, relative);
}

// Renamed when the displaced directory is on the same file system, else copied exactly and
// then removed. Never over something displaced earlier: a name taken gets a numbered suffix.
Expected<void> Displacer::move_out(int parent, const std::string& name,
                                   const std::string& relative) {
  std::string target = relative.empty() ? destination_ : destination_ + "/" + relative;
  const std::string base = target;
  const auto slash = target.rfind('/');
  BOOTSTATE_TRY(make_directories(target.substr(0, slash), 0700));
  for (int suffix = 1;; ++suffix) {
    if (::renameat2(parent, name.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) break;
    if (errno == EEXIST) {
      target = fmt::format("{}.{}", base, suffix);
      continue;
    }
    if (errno != EXDEV) {
      return io_error("move " + (relative.empty() ? shown_ : shown_ + "/" + relative) + " to",
                      target, errno);
    }
    // Another file system: an exact copy under a temporary name, then the original goes.
    const std::string partial = target + ".partial";
    BOOTSTATE_TRY(remove_tree(partial));
    TreeCopier copier(1);
    BOOTSTATE_TRY(copier.copy(0, via_fd(parent, name), partial));
    if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) {
        target = fmt::format("{}.{}", base, suffix);
        BOOTSTATE_TRY(remove_tree(partial));
        continue;
      }
      return io_error("rename " + partial + " to", target, errno);
    }
    BOOTSTATE_TRY(remove_tree(via_fd(parent, name)));
    break;
  }
  moved_.push_back(target);
  return {};
}

}  // namespace bootstate::stage2

#include "stage2/tree_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <set>
#include <string_view>

#include "stage2/fd.hpp"

namespace bootstate::stage2 {

namespace {

Error io_error(std::string_view what, const std::string& path, int error) {
  return make_error(ErrorCode::Io, "cannot {} {}: {}", what, path, errno_text(error));
}

// The names of `path`'s extended attributes (not following a symlink).
Expected<std::vector<std::string>> xattr_names(const std::string& path) {
  std::vector<char> buffer;
  while (true) {
    ssize_t size = ::llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) {
      if (errno == ENOTSUP) return std::vector<std::string>{};
      return io_error("list extended attributes of", path, errno);
    }
    buffer.resize(static_cast<std::size_t>(size));
    size = ::llistxattr(path.c_str(), buffer.data(), buffer.size());
    if (size < 0 && errno == ERANGE) continue;  // attributes were added meanwhile
    if (size < 0) return io_error("list extended attributes of", path, errno);
    buffer.resize(static_cast<std::size_t>(size));
    break;
  }
  std::vector<std::string> names;
  for (std::size_t start = 0; start < buffer.size();) {
    std::string name(buffer.data() + start);
    start += name.size() + 1;
    if (!name.empty()) names.push_back(std::move(name));
  }
  return names;
}

// security.* (SELinux labels, capabilities) and trusted.* need privileges or file-system
// support the destination may lack; they are copied when permitted.
bool optional_attribute(std::string_view name) {
  return name.starts_with("security.") || name.starts_with("trusted.");
}

bool not_permitted(int error) {
  return error == EPERM || error == ENOTSUP || error == EACCES;
}

Expected<void> copy_xattrs(const std::string& source, const std::string& destination) {
  auto names = xattr_names(source);
  if (!names) return names.error();
  std::set<std::string> wanted(names->begin(), names->end());
  // A new file may have inherited attributes (a default ACL): the copy has exactly the source's.
  auto present = xattr_names(destination);
  if (!present) return present.error();
  for (const auto& name : *present) {
    if (wanted.count(name) != 0) continue;
    if (::lremovexattr(destination.c_str(), name.c_str()) != 0 &&
        !(optional_attribute(name) && not_permitted(errno))) {
      return io_error("remove extended attribute " + name + " of", destination, errno);
    }
  }
  std::vector<char> value;
  for (const auto& name : *names) {
    ssize_t size = ::lgetxattr(source.c_str(), name.c_str(), nullptr, 0);
    if (size >= 0) {
      value.resize(static_cast<std::size_t>(size));
      size = ::lgetxattr(source.c_str(), name.c_str(), value.data(), value.size());
    }
    if (size < 0 && errno == ENODATA) continue;  // removed since it was listed
    if (size < 0) return io_error("read extended attribute " + name + " of", source, errno);
    if (::lsetxattr(destination.c_str(), name.c_str(), value.data(), static_cast<std::size_t>(size),
                    0) != 0 &&
        !(optional_attribute(name) && not_permitted(errno))) {
      return io_error("set extended attribute " + name + " on", destination, errno);
    }
  }
  return {};
}

bool copy_unsupported(int error) {
  return error == EXDEV || error == EINVAL || error == ENOSYS || error == EOPNOTSUPP ||
         error == ENOTSUP || error == EBADF;
}

Expected<void> read_write_copy(int in, int out, const std::string& source,
                               const std::string& destination) {
  std::array<char, 1 << 16> buffer;
  while (true) {
    ssize_t size = ::read(in, buffer.data(), buffer.size());
    if (size < 0 && errno == EINTR) continue;
    if (size < 0) return io_error("read", source, errno);
    if (size == 0) return {};
    for (ssize_t done = 0; done < size;) {
      ssize_t written = ::write(out, buffer.data() + done, static_cast<std::size_t>(size - done));
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) return io_error("write", destination, errno);
      done += written;
    }
  }
}

}  // namespace

Expected<void> copy_file_data(const std::string& source, const std::string& destination) {
  Fd in(::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  if (!in.valid()) return io_error("open", source, errno);
  Fd out(::open(destination.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600));
  if (!out.valid()) return io_error("create", destination, errno);
  // A reflink shares the blocks (btrfs, xfs): a backup of a large file costs nothing until the
  // migration changes it.
  if (::ioctl(out.get(), FICLONE, in.get()) == 0) return {};
  bool copied_any = false;
  while (true) {
    ssize_t size = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
    if (size == 0) return {};
    if (size > 0) {
      copied_any = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (!copied_any && copy_unsupported(errno)) break;
    return io_error("copy data of", source, errno);
  }
  return read_write_copy(in.get(), out.get(), source, destination);
}

Expected<void> copy_metadata(const std::string& source, const std::string& destination,
                             const struct stat& status) {
  const bool is_link = S_ISLNK(status.st_mode);
  if (::lchown(destination.c_str(), status.st_uid, status.st_gid) != 0 &&
      !(errno == EPERM && ::geteuid() != 0)) {
    return io_error("change owner of", destination, errno);
  }
  // After lchown, which clears set-user-ID bits. Symlinks have no mode of their own.
  if (!is_link && ::chmod(destination.c_str(), status.st_mode & 07777) != 0) {
    return io_error("change mode of", destination, errno);
  }
  BOOTSTATE_TRY(copy_xattrs(source, destination));
  const struct timespec times[2] = {status.st_atim, status.st_mtim};
  if (::utimensat(AT_FDCWD, destination.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return io_error("set timestamps of", destination, errno);
  }
  return {};
}

std::string TreeCopier::link_path(const LinkTarget& target) const {
  const std::string& root = roots_[target.entry];
  return target.relative.empty() ? root : root + "/" + target.relative;
}

Expected<void> TreeCopier::copy(std::size_t entry, const std::string& source,
                                const std::string& destination) {
  roots_[entry] = destination;
  return copy_node(entry, source, destination, "");
}

Expected<void> TreeCopier::copy_node(std::size_t entry, const std::string& source,
                                     const std::string& destination, const std::string& relative) {
  struct stat status {};
  if (::lstat(source.c_str(), &status) != 0) return io_error("inspect", source, errno);
  if (S_ISDIR(status.st_mode)) return copy_directory(entry, source, destination, relative);

  const auto key = std::make_pair(status.st_dev, status.st_ino);
  if (status.st_nlink > 1) {
    if (auto found = links_.find(key); found != links_.end()) {
      std::string target = link_path(found->second);
      if (::link(target.c_str(), destination.c_str()) != 0) {
        return io_error("hard-link " + target + " to", destination, errno);
      }
      return {};
    }
  }
  if (S_ISREG(status.st_mode)) {
    BOOTSTATE_TRY(copy_file_data(source, destination));
  } else if (S_ISLNK(status.st_mode)) {
    std::vector<char> target(static_cast<std::size_t>(status.st_size) + 2);
    ssize_t size = ::readlink(source.c_str(), target.data(), target.size());
    if (size < 0) return io_error("read symlink", source, errno);
    if (static_cast<std::size_t>(size) >= target.size()) {
      return make_error(ErrorCode::Io, "cannot read symlink {}: it changed while copied", source);
    }
    target[static_cast<std::size_t>(size)] = '\0';
    if (::symlink(target.data(), destination.c_str()) != 0) {
      return io_error("create symlink", destination, errno);
    }
  } else {
    // fifos, character and block devices, sockets: recreated as nodes of the same kind.
    if (::mknod(destination.c_str(), status.st_mode & (S_IFMT | 0600), status.st_rdev) != 0) {
      return io_error("create node", destination, errno);
    }
  }
  BOOTSTATE_TRY(copy_metadata(source, destination, status));
  if (status.st_nlink > 1) links_.emplace(key, LinkTarget{entry, relative});
  return {};
}

Expected<void> TreeCopier::copy_directory(std::size_t entry, const std::string& source,
                                          const std::string& destination,
                                          const std::string& relative) {
  if (::mkdir(destination.c_str(), 0700) != 0)
    return io_error("create directory", destination, errno);
  // Names are read first so that no directory stays open while its subtree is copied.
  std::vector<std::string> names;
  DIR* directory = ::opendir(source.c_str());
  if (directory == nullptr) return io_error("open directory", source, errno);
  errno = 0;
  while (dirent* item = ::readdir(directory)) {
    std::string_view name = item->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int read_error = errno;
  ::closedir(directory);
  if (read_error != 0) return io_error("read directory", source, read_error);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    BOOTSTATE_TRY(copy_node(entry, fmt::format("{}/{}", source, name),
                            fmt::format("{}/{}", destination, name),
                            relative.empty() ? name : fmt::format("{}/{}", relative, name)));
  }
  // Last, so that creating the children does not change the copied timestamps.
  struct stat status {};
  if (::lstat(source.c_str(), &status) != 0) return io_error("inspect", source, errno);
  return copy_metadata(source, destination, status);
}

}  // namespace bootstate::stage2

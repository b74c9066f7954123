// Copies file-system trees exactly, for backups: owners, modes, timestamps, extended
// attributes, symlinks (as symlinks), device nodes and fifos, and hard links between files
// copied by the same TreeCopier. File data is reflinked when the file system can (FICLONE),
// else copied in the kernel (copy_file_range), else read and written.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace bootstate::stage2 {

class TreeCopier {
 public:
  // `entries`: how many trees (backed-up paths) this copier copies; each has an index.
  explicit TreeCopier(std::size_t entries) : roots_(entries) {}

  // Copies `source` (not followed when it is a symlink) to `destination`, which must not exist,
  // as the tree of entry `entry`. A file whose inode was already copied (as a link of a file in
  // this or an earlier entry) becomes a hard link to that copy. Errors name the path and errno.
  Expected<void> copy(std::size_t entry, const std::string& source, const std::string& destination);

  // Entry `entry`'s copy was moved to `path` (restore renames it into place): later hard links
  // to files in it are made to their new place.
  void moved(std::size_t entry, std::string path) { roots_[entry] = std::move(path); }

 private:
  struct LinkTarget {
    std::size_t entry = 0;
    std::string relative;  // below the entry's root, "" for the root itself
  };

  Expected<void> copy_node(std::size_t entry, const std::string& source,
                           const std::string& destination, const std::string& relative);
  Expected<void> copy_directory(std::size_t entry, const std::string& source,
                                const std::string& destination, const std::string& relative);
  std::string link_path(const LinkTarget& target) const;

  std::vector<std::string> roots_;                       // where each entry's copy is now
  std::map<std::pair<dev_t, ino_t>, LinkTarget> links_;  // first copy of multiply-linked inodes
};

// Copies the data of regular file `source` into new file `destination` (mode 0600).
Expected<void> copy_file_data(const std::string& source, const std::string& destination);

// Makes `destination` carry the owner, mode, extended attributes and timestamps `source` has
// (`status` is lstat of source). security.* and trusted.* attributes that may not be set (no
// privilege, or a file system without them) are skipped; every other failure is an error.
// Changing the owner to another user is skipped when not running as root.
Expected<void> copy_metadata(const std::string& source, const std::string& destination,
                             const struct stat& status);

}  // namespace bootstate::stage2

// "Nothing lost" for a backup restore: before a restore puts a snapshot back, everything that
// is there now and that the restore would remove or overwrite with different content is moved
// under bootstate's displaced directory, so what was written since the backup survives.
//
// Precisely, walking the current tree (links never followed) against the snapshot's copy:
// - a node the snapshot lacks, or has as another type, is displaced whole (a directory with
//   everything in it, a symlink as the link itself);
// - a regular file with different bytes, a symlink with a different target, a device node with
//   a different number is displaced;
// - a directory present in both is walked; it stays.
// Owner, mode and timestamp differences alone do not displace (the content is the same).
// Afterwards the current tree holds nothing the snapshot does not, so replacing it loses
// nothing. A re-run after an interruption displaces what is left; moved items stay moved.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace bootstate::stage2 {

class Displacer {
 public:
  // `destination`: the directory that receives this path's displaced items (created when the
  // first is moved), e.g. <data>/displaced/ATTEMPT/MIGRATION/var/lib/app.
  // `shown`: the path being restored, for messages.
  Displacer(std::string destination, std::string shown)
      : destination_(std::move(destination)), shown_(std::move(shown)) {}

  // Compares `name` in the directory `parent` (a descriptor) with `snapshot` (a path in the
  // snapshot; empty when the snapshot has nothing there) and moves out what differs.
  Expected<void> displace(int parent, const std::string& name, const std::string& snapshot);

  // What was moved (paths below the displaced directory), in order.
  const std::vector<std::string>& moved() const { return moved_; }

 private:
  Expected<void> walk(int parent, const std::string& name, const std::string& snapshot,
                      const std::string& relative);
  Expected<void> move_out(int parent, const std::string& name, const std::string& relative);

  std::string destination_;
  std::string shown_;
  std::vector<std::string> moved_;
};

}  // namespace bootstate::stage2

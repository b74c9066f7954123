// The state store's slots as two files on the ESP: DIR/state.0 and DIR/state.1
// (DIR is normally $ESP/bootstate).
//
// Why in-place writes and no rename: FAT gives no atomic rename, so the safety comes from the
// two-slot scheme in store.hpp, not from the file system. A write therefore only has to put the
// bytes into its own slot file and make them durable; it never touches the other slot, so a
// failure (ENOSPC, EIO, a power cut) mid-write can damage only the slot being written.
#pragma once

#include <string>

#include "core/interfaces.hpp"

namespace bootstate {

class SlotFiles : public SlotStorage {
 public:
  // `directory` need not exist yet: the first write creates it (mode 0700).
  explicit SlotFiles(std::string directory);

  // The whole of DIR/state.N; nullopt when the file does not exist. Slot must be 0 or 1.
  Expected<std::optional<std::string>> read(int slot) override;

  // Opens DIR/state.N (creating it with mode 0600 if missing), pwrite()s `bytes` from offset 0,
  // ftruncate()s to their length and makes it durable with exactly one fdatasync. Only when the
  // directory or the file had to be created is the directory fsync'ed as well, so the new name
  // survives a power cut. Errors are Io and name the path and the errno text.
  Expected<void> write(int slot, std::string_view bytes) override;

  // Renames each existing DIR/state.N to DIR/state.N.broken (replacing an older .broken), then
  // fsyncs the directory. Missing slots are skipped.
  Expected<void> move_aside() override;
  // DIR/state.0.broken or DIR/state.1.broken exists.
  bool has_moved_aside() const override;

  // The directory.
  std::string describe() const override { return directory_; }

  // DIR/state.N (for messages and tests).
  std::string slot_path(int slot) const;

 private:
  Expected<void> ensure_directory(bool& created);

  std::string directory_;
};

}  // namespace bootstate

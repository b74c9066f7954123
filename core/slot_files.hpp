// The state store's slots as two files on the ESP: DIR/state.0 and DIR/state.1
// (DIR is normally $ESP/bootstate).
//
// Why in-place writes and no rename: FAT gives no atomic rename, so the safety comes from the
// two-slot scheme in store.hpp, not from the file system. A write therefore only has to put the
// bytes into its own slot file and make them durable; it never touches the other slot, so a
// failure (ENOSPC, EIO, a power cut) mid-write can damage only the slot being written.
//
// Why preallocated: a commit must not need a new block of a full ESP (issue 13, item 13: a step
// that succeeded while the ESP filled up must still be recorded as done). size_to_write() asks
// the store to pad each slot to its file's size (never less: a slot never shrinks), and when a
// slot must grow, to its new size plus headroom, in whole chunks. Later commits then overwrite
// blocks the file already has; only a state that outgrows the headroom needs new ones, and that
// growth is reserved (fallocate) before the slot is touched, so ENOSPC leaves the slot as it was.
//
// Why no symlink, no special file: the store is root's; a slot or directory that is a symlink
// would make root write through it, a FIFO would hang the boot. The directory is opened with
// O_NOFOLLOW and checked (a directory, owned by this user), the slots are opened relative to it
// with O_NOFOLLOW | O_NONBLOCK and must be regular files owned by this user; new files get mode
// 0600, a new directory 0700.
#pragma once

#include <sys/types.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate {

class SlotFiles : public SlotStorage {
 public:
  // Growth of a slot: its payload plus a quarter, at least kMinimumHeadroom, in whole kChunks.
  static constexpr std::size_t kChunk = 4096;
  static constexpr std::size_t kMinimumHeadroom = 16 * 1024;

  // `directory` need not exist yet: the first write creates it (mode 0700).
  explicit SlotFiles(std::string directory);
  ~SlotFiles() override;
  SlotFiles(const SlotFiles&) = delete;
  SlotFiles& operator=(const SlotFiles&) = delete;

  // The whole of DIR/state.N; nullopt when the file (or DIR) does not exist. Slot must be 0 or
  // 1. InvalidInput when DIR or the slot is a symlink, not a directory / regular file, or owned
  // by another user.
  Expected<std::optional<std::string>> read(int slot) override;
  // read() into `bytes`, reusing its buffer.
  Expected<bool> read_into(int slot, std::string& bytes) override;
  // The same file, with the same checks, read in pieces; nullptr when it does not exist.
  Expected<std::unique_ptr<Reader>> open_reader(int slot) override;

  // The larger of the two slot files' sizes when `frame_bytes` fit into it (a growth reserved
  // as much in the other slot); else `frame_bytes` plus headroom, rounded up to kChunk. A
  // missing or unreadable file counts as size 0 (write() reports why).
  std::size_t size_to_write(int slot, std::size_t frame_bytes) override;

  // Opens DIR/state.N (creating it with mode 0600 if missing). When `bytes` are more than the
  // file holds, reserves the new size first, in this slot and (beyond its end) in the other one
  // (fallocate KEEP_SIZE; ENOSPC here changes nothing). Then reads what the file holds and
  // pwrite()s only the kPage pages of `bytes` that differ from it (a commit that changed one
  // record writes the header's page and that record's), ftruncate()s only if the file was
  // longer (a caller that did not ask size_to_write) and makes it durable with exactly one
  // fdatasync. After a failed write() of a slot, the next one writes all of it. Why pages may be
  // written in any order and a cut may land between them: the frame's checksum covers the whole
  // payload, so any mix of old and new pages is a torn slot, which the store ignores in favour of
  // the other one. Only when the directory or the file had to be created is the directory fsync'ed
  // as well, so the new name survives a power cut. Errors are Io and name the path and the errno
  // text.
  Expected<void> write(int slot, std::string_view bytes) override;
  // Writes only `changed`, without reading the slot back, when this object's last write of the
  // slot succeeded and the file is still that one (same inode) of that size, which the frame's
  // size must be too; else as write(). The store lock keeps other writers out in between.
  Expected<void> write_changed(int slot, std::string_view bytes,
                               const std::vector<PageRun>& changed) override;

  // Renames each existing DIR/state.N to DIR/state.N.broken (replacing an older .broken) and
  // removes DIR/idle (it vouched for a slot that is gone), then fsyncs the directory. Missing
  // slots are skipped.
  Expected<void> move_aside() override;
  // DIR/state.0.broken or DIR/state.1.broken exists.
  bool has_moved_aside() const override;

  // The directory.
  std::string describe() const override { return directory_; }

  // The first `bytes` bytes of DIR/state.N (one pread), checked like read().
  Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) override;
  // DIR/idle (core/store_idle.hpp), checked like a slot; at most kIdleClaimSize + 1 bytes.
  Expected<std::optional<std::string>> read_idle_certificate() override;
  // Overwrites DIR/idle in place (created 0600 when missing; the directory is then fsync'ed),
  // truncated to `bytes`, one fdatasync. A torn write leaves a certificate whose checksum fails.
  Expected<void> write_idle_certificate(std::string_view bytes) override;

  // DIR/state.N (for messages and tests).
  std::string slot_path(int slot) const;

  // Successful write() calls so far: `run` exits 1, not 2, when a failure came after one.
  int writes_done() const { return writes_done_; }
  // Bytes the last write() put into its slot (the pages that differed), for tests and bench/.
  std::size_t last_write_bytes() const { return last_write_bytes_; }
  // Bytes the last write() read back to compare (0 when write_changed could trust the slot).
  std::size_t last_read_back_bytes() const { return last_read_back_bytes_; }

  // The unit write() compares and writes: a page of the page cache and of FAT's clusters.
  static constexpr std::size_t kPage = 4096;
  using PageRun = bootstate::PageRun;
  // The pages of `bytes` that differ from `held` (the file's current bytes), adjacent ones
  // joined; pages beyond `held`'s end always differ.
  static std::vector<PageRun> changed_pages(std::string_view held, std::string_view bytes);

 protected:
  // Writes one run of changed pages at `offset`. Virtual for the crash tests only: a test
  // storage drops runs to leave the file as a power cut between two pwrites would.
  virtual Expected<void> write_run(int fd, const std::string& path, std::size_t offset,
                                   std::string_view bytes);

 private:
  // The checked directory descriptor (cached); `create` makes a missing directory.
  // NotFound when missing and !create. Other errors name `slot`'s path.
  Expected<int> directory_fd(bool create, int slot);

  // Size of DIR/state.N; 0 when missing or not a regular file.
  std::size_t file_size(int slot);
  // Opens DIR/state.N for reading, checked (regular, owned): its descriptor, -1 when missing.
  // Errors name the slot's path.
  Expected<int> open_for_reading(int slot);
  // Opens DIR/NAME for reading, checked (regular, owned); nullopt when missing.
  Expected<std::optional<int>> open_checked(const std::string& name);
  // fallocate(KEEP_SIZE) `bytes` for the slot that is not `slot` (its content unchanged).
  Expected<void> reserve_other(int slot, std::size_t bytes);

  // A slot file opened (created when missing) and checked for writing.
  struct OpenSlot {
    std::string path;
    int fd = -1;  // owned by the caller
    bool created = false;
    bool directory_existed = false;
    std::size_t size = 0;
    ino_t inode = 0;
  };
  Expected<OpenSlot> open_for_write(int slot);
  // Writes `runs` of `bytes` into the open slot, truncates it to bytes.size() when it was
  // longer, one fdatasync; the slot is then vouched for. Closes `descriptor`.
  Expected<void> write_pages(int slot, const OpenSlot& open, int descriptor, std::string_view bytes,
                             const std::vector<PageRun>& runs);

  std::string directory_;
  int directory_fd_ = -1;
  int writes_done_ = 0;
  std::size_t last_write_bytes_ = 0;
  std::size_t last_read_back_bytes_ = 0;
  std::string held_;  // a slot's bytes before a write(); the buffer is reused
  // A write of the slot failed in this process: its next write() writes every page.
  std::array<bool, 2> distrusted_{};
  // The slot as this object last wrote it, successfully (write_changed may trust it).
  struct Vouched {
    ino_t inode = 0;
    std::size_t size = 0;
  };
  std::array<std::optional<Vouched>, 2> vouched_{};
};

}  // namespace bootstate

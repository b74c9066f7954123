// The bytes of the next slot, kept from one commit to the next, with what each commit changed
// (issue #17 item 2).
//
// Why: a commit that changes one step of one record must cost what changed, not the size of the
// slot. Once the payload is laid out so that unchanged records keep their offsets
// (state_layout.hpp), three passes over the whole slot remained per commit: copying the payload
// into a new buffer, checksumming it, and reading the target slot back to find the pages that
// differ. Here the writer says where it puts bytes, and the frame keeps
// - the bytes themselves (unchanged ranges are not copied again),
// - the CRC32C of each block of kChecksumBlock bytes, so the slot's checksum reads only the
//   blocks that changed and combines the others' (crc32c_combine),
// - for each page of kPage bytes the version in which it last changed, so a slot last written
//   at version v needs only the pages changed after v (SlotStorage::write_changed).
// Bytes are compared before they are marked: putting what is already there changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate {

class SlotFrame {
 public:
  static constexpr std::size_t kPage = 4096;
  static constexpr std::size_t kChecksumBlock = 64 * 1024;

  // The checksum covers the bytes from `checksum_start` on (a slot's header is not in it).
  explicit SlotFrame(std::size_t checksum_start) : checksum_start_(checksum_start) {}

  // Changes from now on belong to a new version (a new frame is at version 1; 0 is "before
  // any": every page changed since).
  void begin_version() { ++version_; }
  std::uint64_t version() const { return version_; }

  std::string_view bytes() const { return bytes_; }
  std::size_t size() const { return bytes_.size(); }

  // Bytes [offset, offset + text.size()) become `text`; the frame grows (with spaces) if needed.
  void put(std::size_t offset, std::string_view text);
  // Bytes [offset, offset + count) become `filler`.
  void fill(std::size_t offset, std::size_t count, char filler);
  // Cuts the frame to `size` bytes or extends it with `filler`.
  void resize(std::size_t size, char filler);

  // crc32c(bytes() from checksum_start on, previous), reading only the blocks that changed
  // since the last call.
  std::uint32_t checksum(std::uint32_t previous);
  // Bytes the last checksum() read (tests and bench/).
  std::size_t last_checksummed_bytes() const { return last_checksummed_bytes_; }

  // The pages that changed after `version` (adjacent ones joined), within size(). A storage
  // holding the frame of `version` gets bytes() by writing just these (and truncating).
  std::vector<PageRun> changed_since(std::uint64_t version) const;

 private:
  // Marks the pages and checksum blocks of [begin, end) as changed in this version.
  void mark(std::size_t begin, std::size_t end);
  // Sizes the per-page and per-block records to bytes_ (new ones are marked by the caller).
  void size_records();
  // Bytes [offset, offset + count) become `source` (count bytes) or `filler` when source is null,
  // compared first, page by page.
  void assign(std::size_t offset, std::size_t count, const char* source, char filler);

  std::string bytes_;
  std::uint64_t version_ = 1;
  std::vector<std::uint64_t> page_changed_in_;  // per kPage page of bytes_
  std::size_t checksum_start_;
  std::vector<std::uint32_t> block_checksum_;  // crc32c of each kChecksumBlock from the start
  std::vector<bool> block_stale_;
  std::size_t last_checksummed_bytes_ = 0;
};

}  // namespace bootstate

#include "core/slot_frame.hpp"

#include <algorithm>
#include <cstring>

#include "core/crc32c.hpp"

namespace bootstate {

void SlotFrame::size_records() {
  page_changed_in_.resize((bytes_.size() + kPage - 1) / kPage, version_);
  const std::size_t checksummed =
      bytes_.size() > checksum_start_ ? bytes_.size() - checksum_start_ : 0;
  const std::size_t blocks = (checksummed + kChecksumBlock - 1) / kChecksumBlock;
  block_checksum_.resize(blocks, 0);
  block_stale_.resize(blocks, true);
}

void SlotFrame::mark(std::size_t begin, std::size_t end) {
  if (begin >= end) return;
  for (std::size_t page = begin / kPage; page <= (end - 1) / kPage; ++page) {
    page_changed_in_[page] = version_;
  }
  if (end <= checksum_start_) return;
  const std::size_t first = (std::max(begin, checksum_start_) - checksum_start_) / kChecksumBlock;
  const std::size_t last = (end - 1 - checksum_start_) / kChecksumBlock;
  for (std::size_t block = first; block <= last; ++block) block_stale_[block] = true;
}

void SlotFrame::assign(std::size_t offset, std::size_t count, const char* source, char filler) {
  const std::size_t end = offset + count;
  const std::size_t old_size = bytes_.size();
  if (end > old_size) {
    bytes_.resize(end, ' ');
    size_records();
    mark(old_size, end);
  }
  // Page by page: compare, and copy and mark only a page whose bytes differ. A fill compares
  // with a page of the filler: memcmp's speed, because the padding of a slot is large.
  const std::string pattern = source == nullptr ? std::string(kPage, filler) : std::string();
  std::size_t at = offset;
  while (at < end) {
    const std::size_t piece_end = std::min(end, (at / kPage + 1) * kPage);
    const std::size_t length = piece_end - at;
    char* target = bytes_.data() + at;
    const char* from = source == nullptr ? nullptr : source + (at - offset);
    const bool differs =
        at >= old_size || std::memcmp(target, from != nullptr ? from : pattern.data(), length) != 0;
    if (differs) {
      if (from != nullptr) {
        std::memcpy(target, from, length);
      } else {
        std::memset(target, filler, length);
      }
      mark(at, piece_end);
    }
    at = piece_end;
  }
}

void SlotFrame::put(std::size_t offset, std::string_view text) {
  assign(offset, text.size(), text.data(), ' ');
}

void SlotFrame::fill(std::size_t offset, std::size_t count, char filler) {
  assign(offset, count, nullptr, filler);
}

void SlotFrame::resize(std::size_t size, char filler) {
  if (size >= bytes_.size()) {
    fill(bytes_.size(), size - bytes_.size(), filler);
    return;
  }
  bytes_.resize(size);
  size_records();
  // The last page and block may now end earlier: the block's checksum is of fewer bytes.
  if (size > 0) mark(size - 1, size);
}

std::uint32_t SlotFrame::checksum(std::uint32_t previous) {
  static const std::uint32_t whole_block_shift = crc32c_shift_for(kChecksumBlock);
  const std::string_view checksummed = bytes_.size() > checksum_start_
                                           ? std::string_view(bytes_).substr(checksum_start_)
                                           : std::string_view();
  last_checksummed_bytes_ = 0;
  std::uint32_t crc = previous;
  for (std::size_t block = 0; block < block_checksum_.size(); ++block) {
    const std::string_view bytes = checksummed.substr(block * kChecksumBlock, kChecksumBlock);
    if (block_stale_[block]) {
      block_checksum_[block] = crc32c(bytes);
      block_stale_[block] = false;
      last_checksummed_bytes_ += bytes.size();
    }
    const std::uint32_t shift =
        bytes.size() == kChecksumBlock ? whole_block_shift : crc32c_shift_for(bytes.size());
    crc = crc32c_combine_with(shift, crc, block_checksum_[block]);
  }
  return crc;
}

std::vector<PageRun> SlotFrame::changed_since(std::uint64_t version) const {
  std::vector<PageRun> runs;
  for (std::size_t page = 0; page < page_changed_in_.size(); ++page) {
    if (page_changed_in_[page] <= version) continue;
    const std::size_t offset = page * kPage;
    const std::size_t size = std::min(kPage, bytes_.size() - offset);
    if (!runs.empty() && runs.back().offset + runs.back().size == offset) {
      runs.back().size += size;
    } else {
      runs.push_back({offset, size});
    }
  }
  return runs;
}

}  // namespace bootstate

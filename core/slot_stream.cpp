#include "core/slot_stream.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include "core/crc32c.hpp"
#include "core/json_fields.hpp"

namespace bootstate {

SlotStream::SlotStream(SlotStorage::Reader& reader)
    : reader_(reader), buffer_(std::make_unique_for_overwrite<char[]>(kPiece + 1)) {
  refill();
}

const char* SlotStream::refill() {
  served_ += static_cast<std::size_t>(end_ - begin_);
  begin_ = next_ = end_ = buffer_.get();
  buffer_[0] = '\0';
  while (!ended_) {
    auto count = reader_.read(std::span<char>(buffer_.get(), kPiece));
    if (!count || *count == 0) {
      if (!count) error_ = count.error();
      ended_ = true;
      buffer_[0] = '\0';
      return next_;
    }
    size_ += *count;
    const char* data = buffer_.get();
    std::size_t left = *count;
    if (head_size_ < kSlotHeaderSize) {
      const std::size_t taken = std::min(left, kSlotHeaderSize - head_size_);
      std::memcpy(head_.data() + head_size_, data, taken);
      head_size_ += taken;
      data += taken;
      left -= taken;
      if (head_size_ == kSlotHeaderSize) checksum_ = crc32c(head().substr(0, kSlotChecksumOffset));
    }
    if (left == 0) continue;  // the header is not complete yet, or ended with this piece
    checksum_ = crc32c(std::string_view(data, left), checksum_);
    begin_ = next_ = data;
    end_ = data + left;
    buffer_[static_cast<std::size_t>(end_ - buffer_.get())] = '\0';
    return next_;
  }
  buffer_[0] = '\0';
  return next_;
}

bool SlotStream::rest_is_whitespace() {
  bool blank = true;
  for (;;) {
    const char* at = blank ? past_spaces(next_, end_) : end_;
    blank = blank && std::all_of(at, end_, [](char c) {
              return c == ' ' || c == '\n' || c == '\t' || c == '\r';
            });
    next_ = end_;
    if (ended_) return blank;
    refill();
  }
}

void SlotStream::skip_rest() {
  while (!ended_) {
    next_ = end_;
    refill();
  }
  next_ = end_;
}

Expected<SlotContents> SlotStream::frame() const {
  if (error_) return *error_;
  return check_slot_frame_parts(head(), size_, [this] { return checksum_; });
}

}  // namespace bootstate

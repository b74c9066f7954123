// A state slot read in pieces (SlotStorage::Reader) and checksummed as it goes: rapidjson's
// input stream over the slot's payload, for a load that parses the newest slot while reading it
// (state_fast_decode.hpp), and the frame check of the older slot, without either slot ever being
// held whole (interfaces.hpp SlotStorage::Reader says why).
//
// The bytes parsed are the bytes checksummed: a slot written meanwhile (a status reading while a
// run commits) fails its checksum here exactly as a whole read of it would.
#pragma once

#include <rapidjson/stream.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "core/json_fields.hpp"
#include "core/state_codec.hpp"

namespace bootstate {

class SlotStream {
 public:
  // Reads the first piece (the header and the payload's start).
  explicit SlotStream(SlotStorage::Reader& reader);
  SlotStream(const SlotStream&) = delete;
  SlotStream& operator=(const SlotStream&) = delete;

  // The header's bytes (fewer than kSlotHeaderSize when the slot is that short).
  std::string_view head() const { return {head_.data(), head_size_}; }

  // rapidjson's input stream over the payload: its bytes, then '\0' (as a C string ends; a NUL
  // in the payload ends it too, as it ends the text the document reader parses). A cursor is a
  // pointer the parser keeps in a register (copyOptimization below); each piece ends in a '\0'
  // sentinel, so a byte costs one test, and only a '\0' asks whether the piece is used up.
  class Cursor {
   public:
    using Ch = char;
    explicit Cursor(SlotStream& stream) : stream_(&stream), next_(stream.next_) {}
    Ch Peek() {
      const Ch c = *next_;
      return c != '\0' ? c : peek_at_nul();
    }
    Ch Take() {
      const Ch c = *next_;
      if (c != '\0') {
        ++next_;
        return c;
      }
      return take_at_nul();
    }
    std::size_t Tell() const {
      return stream_->served_ + static_cast<std::size_t>(next_ - stream_->begin_);
    }
    // Only for in-situ parsing, which this stream does not serve.
    Ch* PutBegin() { return nullptr; }
    void Put(Ch) {}
    void Flush() {}
    std::size_t PutEnd(Ch*) { return 0; }

    // rapidjson's SkipWhitespace for a cursor (found by argument-dependent lookup, preferred to
    // its byte-at-a-time template): a laid-out payload pads each record with spaces, a fifth of
    // its bytes.
    friend void SkipWhitespace(Cursor& cursor) {
      for (char c = cursor.Peek(); c == ' ' || c == '\n' || c == '\r' || c == '\t';
           c = cursor.Peek()) {
        cursor.Take();
        if (c == ' ' && *cursor.next_ == ' ') {
          cursor.next_ = past_spaces(cursor.next_, cursor.piece_end());
        }
      }
    }

   private:
    friend class SlotStream;
    const char* piece_end() const { return stream_->end_; }
    // A '\0': the piece's sentinel (read the next piece) or a NUL in the payload.
    Ch peek_at_nul() {
      if (next_ == stream_->end_) next_ = stream_->refill();
      return *next_;
    }
    Ch take_at_nul() {
      const Ch c = peek_at_nul();
      if (next_ != stream_->end_) ++next_;
      return c;
    }
    SlotStream* stream_;
    const char* next_;
  };
  Cursor cursor() { return Cursor(*this); }
  // Where a parse left the cursor: the rest is read from there.
  void seek(const Cursor& cursor) { next_ = cursor.next_; }

  // Reads the rest of the slot: whether it held only JSON whitespace (a laid-out payload's
  // padding) from where the parse stopped.
  bool rest_is_whitespace();
  // Reads the rest of the slot unseen (for frame()).
  void skip_rest();
  // After the whole slot was read: the frame checks of decode_slot_frame, with its messages, or
  // the read's error.
  Expected<SlotContents> frame() const;

 private:
  // The next piece; returns its start (next_), a '\0' at end_ when the slot is read.
  const char* refill();

  // Pieces of 32 KiB: 57 reads of a 1.8 MB slot; a larger buffer is more new pages, a smaller
  // one more system calls, each about the cost of a page fault here.
  static constexpr std::size_t kPiece = 32 * 1024;
  SlotStorage::Reader& reader_;
  std::array<char, kSlotHeaderSize> head_{};
  std::size_t head_size_ = 0;
  std::uint64_t size_ = 0;      // bytes read so far, the header's included
  std::uint32_t checksum_ = 0;  // of the header's fields, then of the payload read so far
  std::size_t served_ = 0;      // payload bytes before begin_
  std::optional<Error> error_;
  bool ended_ = false;
  std::unique_ptr<char[]> buffer_;  // kPiece bytes and the sentinel
  const char* begin_ = nullptr;
  const char* next_ = nullptr;
  const char* end_ = nullptr;
};

}  // namespace bootstate

namespace rapidjson {
// The parser copies a cursor into a local and back (rapidjson/stream.h StreamTraits).
template <>
struct StreamTraits<bootstate::SlotStream::Cursor> {
  enum { copyOptimization = 1 };
};
}  // namespace rapidjson

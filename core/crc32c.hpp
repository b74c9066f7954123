// CRC32C (Castagnoli): the checksum of the state store's slot header and payload.
//
// Why CRC32C and not a cryptographic hash: the slot checksum only has to catch torn writes and
// bit rot on the ESP (every single- and double-bit error and every burst up to 32 bits in a
// slot is detected); the state is not a security boundary. It is the checksum ext4, btrfs and
// iSCSI use, so its error-detection properties are well known.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bootstate {

// CRC32C of `data` (reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF),
// so crc32c("123456789") == 0xE3069283.
//
// `previous` continues a running checksum: crc32c(b, crc32c(a)) == crc32c(a + b). That lets the
// slot codec checksum the header fields and the payload without concatenating them.
std::uint32_t crc32c(std::string_view data, std::uint32_t previous = 0);

// The checksum of a + b from those of a and b: crc32c_combine(crc32c(a), crc32c(b), b.size()) ==
// crc32c(a + b), in O(log b.size()) steps without b's bytes. Why: a commit changes a few pages of
// a slot of megabytes, so the slot's checksum is kept per block (core/slot_frame.hpp) and only
// changed blocks are read again. The arithmetic is the one zlib's crc32_combine documents, for
// this polynomial: a's checksum times x^(8 * b.size()) modulo the polynomial, plus b's.
std::uint32_t crc32c_combine(std::uint32_t first, std::uint32_t second, std::size_t second_size);

// The factor crc32c_combine multiplies by for `size` bytes, computed once for a size used often
// (a whole block): then crc32c_combine_with(shift, a, b) == crc32c_combine(a, b, size).
std::uint32_t crc32c_shift_for(std::size_t size);
std::uint32_t crc32c_combine_with(std::uint32_t shift, std::uint32_t first, std::uint32_t second);

}  // namespace bootstate

// CRC32C (Castagnoli): the checksum of the state store's slot header and payload.
//
// Why CRC32C and not a cryptographic hash: the slot checksum only has to catch torn writes and
// bit rot on the ESP (every single- and double-bit error and every burst up to 32 bits in a
// slot is detected); the state is not a security boundary. It is the checksum ext4, btrfs and
// iSCSI use, so its error-detection properties are well known.
#pragma once

#include <cstdint>
#include <string_view>

namespace bootstate {

// CRC32C of `data` (reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF),
// so crc32c("123456789") == 0xE3069283.
//
// `previous` continues a running checksum: crc32c(b, crc32c(a)) == crc32c(a + b). That lets the
// slot codec checksum the header fields and the payload without concatenating them.
std::uint32_t crc32c(std::string_view data, std::uint32_t previous = 0);

}  // namespace bootstate

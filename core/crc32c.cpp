// Table-driven CRC32C, one byte per step. A slot is read a few times per boot and written once
// per transition, so a byte-wise table is far from the bottleneck next to JSON decoding and an
// fdatasync on the ESP (bench/store measures both); no need for slicing-by-8 or SSE4.2.
#include "core/crc32c.hpp"

#include <array>

namespace bootstate {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78U;  // Castagnoli, bit-reflected

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t index = 0; index < 256; ++index) {
    std::uint32_t crc = index;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1U) != 0 ? (crc >> 1) ^ kPolynomial : crc >> 1;
    }
    table[index] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t previous) {
  // Undo the final xor of the previous result so that chained calls equal one call.
  std::uint32_t crc = ~previous;
  for (const char character : data) {
    const auto byte = static_cast<unsigned char>(character);
    crc = kTable[(crc ^ byte) & 0xFFU] ^ (crc >> 8);
  }
  return ~crc;
}

}  // namespace bootstate

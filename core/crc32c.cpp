// CRC32C with the SSE4.2 `crc32` instruction where the processor has it (every x86-64 since
// 2008), else a byte-wise table. Why not the table alone: `status` loads both slots of a store
// that can be 1.6 MB each (1,000 migrations), and at 125–365 MB/s the table alone cost 4.5–13 ms
// per slot (docs/PERFORMANCE.md), most of the 20 ms `status` may take.
#include "core/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

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

std::uint32_t update_table(std::uint32_t crc, std::string_view data) {
  for (const char character : data) {
    const auto byte = static_cast<unsigned char>(character);
    crc = kTable[(crc ^ byte) & 0xFFU] ^ (crc >> 8);
  }
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t update_sse42(std::uint32_t crc,
                                                             std::string_view data) {
  std::uint64_t wide = crc;
  std::size_t offset = 0;
  for (; offset + 8 <= data.size(); offset += 8) {
    std::uint64_t word;
    std::memcpy(&word, data.data() + offset, sizeof word);
    wide = _mm_crc32_u64(wide, word);
  }
  auto narrow = static_cast<std::uint32_t>(wide);
  for (; offset < data.size(); ++offset) {
    narrow = _mm_crc32_u8(narrow, static_cast<unsigned char>(data[offset]));
  }
  return narrow;
}

bool have_sse42() {
  static const bool supported = __builtin_cpu_supports("sse4.2");
  return supported;
}
#endif

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t previous) {
  // Undo the final xor of the previous result so that chained calls equal one call.
  std::uint32_t crc = ~previous;
#if defined(__x86_64__)
  if (have_sse42()) return ~update_sse42(crc, data);
#endif
  return ~update_table(crc, data);
}

}  // namespace bootstate

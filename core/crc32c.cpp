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

// a * b modulo the polynomial, both bit-reflected (bit 31 is x^0).
std::uint32_t multiply_modulo(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t bit = 1U << 31; bit != 0; bit >>= 1) {
    if ((a & bit) != 0) product ^= b;
    b = (b & 1U) != 0 ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

}  // namespace

std::uint32_t crc32c_shift_for(std::size_t size) {
  // x^(8 * size) by squaring: `power` runs through x^(8 * 2^k).
  std::uint32_t result = 1U << 31;  // x^0
  std::uint32_t power = 1U << 23;   // x^8
  for (std::size_t remaining = size; remaining != 0; remaining >>= 1) {
    if ((remaining & 1U) != 0) result = multiply_modulo(result, power);
    power = multiply_modulo(power, power);
  }
  return result;
}

std::uint32_t crc32c_combine_with(std::uint32_t shift, std::uint32_t first, std::uint32_t second) {
  return multiply_modulo(shift, first) ^ second;
}

std::uint32_t crc32c_combine(std::uint32_t first, std::uint32_t second, std::size_t second_size) {
  return crc32c_combine_with(crc32c_shift_for(second_size), first, second);
}

std::uint32_t crc32c(std::string_view data, std::uint32_t previous) {
  // Undo the final xor of the previous result so that chained calls equal one call.
  std::uint32_t crc = ~previous;
#if defined(__x86_64__)
  if (have_sse42()) return ~update_sse42(crc, data);
#endif
  return ~update_table(crc, data);
}

}  // namespace bootstate

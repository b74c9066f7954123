// The SSE4.2 path (8 bytes at a time) must agree with byte-wise chaining on any length.
#include <doctest/doctest.h>

#include <string>

#include "core/crc32c.hpp"

using namespace bootstate;

TEST_CASE("crc32c: one pass over a buffer equals chaining it byte by byte") {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  for (std::size_t length : {0UL, 1UL, 7UL, 8UL, 9UL, 63UL, 64UL, 1000UL}) {
    std::uint32_t chained = 0;
    for (std::size_t i = 0; i < length; ++i) chained = crc32c(data.substr(i, 1), chained);
    CHECK_MESSAGE(crc32c(std::string_view(data).substr(0, length)) == chained, "length " << length);
  }
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAU);  // RFC 3720 B.4: 32 bytes of zeros
}

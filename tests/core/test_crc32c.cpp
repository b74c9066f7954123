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

TEST_CASE("crc32c: combining two checksums equals the checksum of the joined bytes") {
  std::string data;
  for (int i = 0; i < 70000; ++i) data.push_back(static_cast<char>((i * 2654435761U) >> 13));
  const std::string_view all(data);
  for (std::size_t split : {0UL, 1UL, 31UL, 4096UL, 65535UL, 70000UL}) {
    for (std::size_t end : {split, split + 1, split + 4096, all.size()}) {
      if (end > all.size()) continue;
      const auto first = all.substr(0, split);
      const auto second = all.substr(split, end - split);
      INFO("split " << split << ", end " << end);
      CHECK(crc32c_combine(crc32c(first), crc32c(second), second.size()) ==
            crc32c(all.substr(0, end)));
      CHECK(crc32c_combine_with(crc32c_shift_for(second.size()), crc32c(first), crc32c(second)) ==
            crc32c(all.substr(0, end)));
    }
  }
  // A checksum chained from a header (as the slot's is) combines the same way.
  const std::uint32_t header = crc32c("BOOTSTAT header");
  CHECK(crc32c_combine(crc32c(all.substr(0, 100), header), crc32c(all.substr(100)),
                       all.size() - 100) == crc32c(all, header));
}

// The frame a commit is built in (core/slot_frame.hpp): whatever is put, filled or resized, its
// checksum by blocks is the checksum of its bytes, and the pages it names as changed since a
// version are every page that differs from the bytes of that version.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "core/crc32c.hpp"
#include "core/slot_frame.hpp"

namespace bootstate {
namespace {

// Every page of `now` that differs from `then` (or lies beyond its end) is within `runs`.
bool covers(const std::vector<PageRun>& runs, const std::string& then, std::string_view now) {
  for (std::size_t offset = 0; offset < now.size(); offset += SlotFrame::kPage) {
    const std::size_t size = std::min(SlotFrame::kPage, now.size() - offset);
    if (offset + size <= then.size() && then.compare(offset, size, now.substr(offset, size)) == 0) {
      continue;
    }
    bool found = false;
    for (const PageRun& run : runs) {
      found = found || (run.offset <= offset && offset + size <= run.offset + run.size);
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("slot frame: random edits keep the checksum and the changed pages right") {
  std::mt19937 random(17);
  SlotFrame frame(32);
  std::string shadow;
  std::vector<std::string> versions{""};  // versions[v]: the bytes at the end of version v
  auto pick = [&](std::size_t bound) {
    return std::uniform_int_distribution<std::size_t>(0, bound)(random);
  };
  for (int round = 0; round < 300; ++round) {
    frame.begin_version();
    const int edits = static_cast<int>(pick(4));
    for (int edit = 0; edit < edits; ++edit) {
      const std::size_t size = shadow.size();
      switch (pick(3)) {
        case 0: {  // a record rewritten (or appended)
          const std::size_t offset = pick(size);
          const std::string text(pick(9000), static_cast<char>('a' + pick(25)));
          frame.put(offset, text);
          if (offset + text.size() > shadow.size()) shadow.resize(offset + text.size(), ' ');
          shadow.replace(offset, text.size(), text);
          break;
        }
        case 1: {  // padding
          const std::size_t offset = pick(size);
          const std::size_t count = pick(70000);
          frame.fill(offset, count, ' ');
          if (offset + count > shadow.size()) shadow.resize(offset + count, ' ');
          shadow.replace(offset, count, std::string(count, ' '));
          break;
        }
        case 2: {  // the slot's size
          const std::size_t to = pick(size + 100000);
          frame.resize(to, ' ');
          shadow.resize(to, ' ');
          break;
        }
        default: {  // the header, rewritten with its value
          frame.put(0, shadow.substr(0, 32));
          break;
        }
      }
    }
    INFO("round " << round);
    REQUIRE(frame.bytes() == shadow);
    const std::uint32_t header = crc32c("header");
    const std::string_view payload =
        shadow.size() > 32 ? std::string_view(shadow).substr(32) : std::string_view();
    CHECK(frame.checksum(header) == crc32c(payload, header));
    // A slot written at any earlier version gets these bytes from the pages named.
    const std::size_t since = pick(versions.size() - 1);
    CHECK(covers(frame.changed_since(since), versions[since], frame.bytes()));
    versions.push_back(shadow);
  }
}

TEST_CASE("slot frame: putting what is there changes nothing; one byte changes one page") {
  SlotFrame frame(32);
  frame.put(0, std::string(2'000'000, 'x'));
  (void)frame.checksum(0);
  const std::uint64_t written = frame.version();
  frame.begin_version();
  frame.put(100'000, std::string(5000, 'x'));  // the same bytes
  frame.fill(1'999'000, 1000, 'x');
  CHECK(frame.changed_since(written).empty());
  (void)frame.checksum(0);
  CHECK(frame.last_checksummed_bytes() == 0);

  frame.put(1'000'000, "y");
  const auto runs = frame.changed_since(written);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].offset == 1'000'000 / SlotFrame::kPage * SlotFrame::kPage);
  CHECK(runs[0].size == SlotFrame::kPage);
  std::string expected(2'000'000, 'x');
  expected[1'000'000] = 'y';
  CHECK(frame.checksum(7) == crc32c(std::string_view(expected).substr(32), 7));
  CHECK(frame.last_checksummed_bytes() == SlotFrame::kChecksumBlock);
}

}  // namespace bootstate

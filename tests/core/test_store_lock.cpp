// The lock file's holder text: one fixed-size record rewritten in place (no ftruncate, which
// costs an idle boot half a millisecond on a disk file system), so a shorter holder must not
// show the tail of a longer one that held the lock before.
#include <doctest/doctest.h>

#include "core/store_lock.hpp"
#include "tests/stage2/temp_dir.hpp"

namespace bootstate::test {

TEST_CASE("store lock: a waiter names the current holder, not the rest of an earlier one") {
  TempDir dir;
  const std::string path = dir / "run/bootstate/lock";
  {
    auto first = StoreLock::acquire(path, std::string(200, 'x'), std::chrono::milliseconds(0), {});
    REQUIRE(first);
  }
  auto holder = StoreLock::acquire(path, "bootstate accept a", std::chrono::milliseconds(0), {});
  REQUIRE(holder);
  auto waiter = StoreLock::acquire(path, "bootstate run", std::chrono::milliseconds(0), {});
  REQUIRE_FALSE(waiter);
  const std::string& message = waiter.error().message;
  INFO(message);
  CHECK(message.find("(bootstate accept a, since ") != std::string::npos);
  CHECK(message.find("UTC)") != std::string::npos);
  CHECK(message.find("xxx") == std::string::npos);
  CHECK(message.find('\0') == std::string::npos);
  CHECK(read_text(path).size() == 256);  // one record, the same size every time
}

}  // namespace bootstate::test

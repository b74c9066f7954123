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
  // The holder writes no time (an idle run reads no clock): "since" is the file's mtime.
  CHECK(read_text(path).find("since") == std::string::npos);
}

TEST_CASE("store lock: a holder text that names its time already is shown as written") {
  // What a bootstate before a54d38a wrote, holding the lock while a newer one waits (a live
  // switch between versions): its own "since", not a second one from the file's mtime.
  TempDir dir;
  const std::string path = dir / "run/bootstate/lock";
  auto holder = StoreLock::acquire(path, "bootstate run", std::chrono::milliseconds(0), {});
  REQUIRE(holder);
  std::string old_text =
      "pid 7 (bootstate run --phase post-activation, since 2026-12-01 10:00:00 UTC)\n";
  old_text.resize(256, '\0');
  write_text(path, old_text);
  auto waiter = StoreLock::acquire(path, "bootstate status", std::chrono::milliseconds(0), {});
  REQUIRE_FALSE(waiter);
  const std::string& message = waiter.error().message;
  INFO(message);
  CHECK(message.find("held by pid 7 (bootstate run --phase post-activation, since 2026-12-01 "
                     "10:00:00 UTC);") != std::string::npos);
  CHECK(message.find("since", message.find("since") + 1) == std::string::npos);
}

}  // namespace bootstate::test

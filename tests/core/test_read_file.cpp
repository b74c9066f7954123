// read_untrusted_file: for files a step writes (its progress file, in a work directory that a
// `user` step owns), read by bootstate as root.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/read_file.hpp"

using namespace bootstate;

TEST_CASE("an untrusted file is not followed through a symlink and is read up to a limit") {
  char pattern[] = "/tmp/bootstate-read-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  const std::string secret = dir + "/secret";
  const std::string progress = dir + "/progress";
  {
    int fd = ::open(secret.c_str(), O_WRONLY | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "42 root's secret\n", 17) == 17);
    ::close(fd);
  }
  // The step replaced its progress file with a link to a file it cannot read itself.
  REQUIRE(::symlink(secret.c_str(), progress.c_str()) == 0);
  auto linked = read_untrusted_file(progress, 256);
  REQUIRE_FALSE(linked.has_value());
  CHECK(linked.error().code == ErrorCode::InvalidInput);
  CHECK(linked.error().message.find("symbolic link, not followed") != std::string::npos);
  CHECK(read_file(progress).value() == "42 root's secret\n");  // the trusting reader follows

  ::unlink(progress.c_str());
  REQUIRE(::mkfifo(progress.c_str(), 0600) == 0);  // and never blocks on a FIFO
  CHECK(read_untrusted_file(progress, 256).error().code == ErrorCode::InvalidInput);

  ::unlink(progress.c_str());
  {
    int fd = ::open(progress.c_str(), O_WRONLY | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 64 << 20) == 0);  // 64 MiB of a step's making
    ::close(fd);
  }
  CHECK(read_untrusted_file(progress, 256).value().size() == 256);
  std::filesystem::remove_all(dir);
}

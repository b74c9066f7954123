// Directories below bootstate's data directory are created and opened without following a
// symlink (issue 13, item 12: a work directory that was a planted symlink was followed).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stage2/safe_dirs.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::TempDir;

TEST_CASE("make_directories_below creates every missing component") {
  TempDir dir;
  auto made = stage2::make_directories_below(dir.path(), "work/mig/step");
  REQUIRE(made);
  struct stat status {};
  REQUIRE(::stat((dir / "work/mig/step").c_str(), &status) == 0);
  CHECK(S_ISDIR(status.st_mode));
  CHECK(stage2::make_directories_below(dir.path(), "work/mig/step"));  // again: fine
}

TEST_CASE("a work directory component that is a symlink is refused, nothing created beyond") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "outside").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "work").c_str(), 0755) == 0);
  REQUIRE(::symlink((dir / "outside").c_str(), (dir / "work/mig").c_str()) == 0);
  auto made = stage2::make_directories_below(dir.path(), "work/mig/step");
  REQUIRE_FALSE(made);
  CHECK(made.error().message ==
        dir / "work/mig" + " is a symlink; bootstate does not follow it (remove it to continue)");
  struct stat status {};
  CHECK(::lstat((dir / "outside/step").c_str(), &status) != 0);
}

TEST_CASE("a final component that is a symlink to a directory is refused too") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "outside").c_str(), 0755) == 0);
  REQUIRE(::symlink((dir / "outside").c_str(), (dir / "logs").c_str()) == 0);
  CHECK_FALSE(stage2::make_directories_below(dir.path(), "logs"));
}

TEST_CASE("a component that is a file is refused with its name") {
  TempDir dir;
  bootstate::test::write_text(dir / "logs", "");
  auto made = stage2::make_directories_below(dir.path(), "logs");
  REQUIRE_FALSE(made);
  CHECK(made.error().message == dir / "logs" + " is not a directory");
}

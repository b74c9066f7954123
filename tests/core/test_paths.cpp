// Path arithmetic and directory effects that replace std::filesystem in the program
// (core/paths.hpp, core/directory.hpp): the same answers std::filesystem gives.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/directory.hpp"
#include "core/paths.hpp"

using namespace bootstate;

TEST_CASE("path_join is filesystem::path's operator/ for the joins bootstate makes") {
  CHECK(path_join("/", "proc/cmdline") == "/proc/cmdline");
  CHECK(path_join("/tmp/root", "proc/cmdline") == "/tmp/root/proc/cmdline");
  CHECK(path_join("/tmp/root/", "proc/cmdline") == "/tmp/root/proc/cmdline");
  CHECK(path_join("", "loader/entries") == "loader/entries");
  CHECK(path_join("/boot", "/abs") == "/abs");
  for (auto [base, relative] : {std::pair{"/a", "b/c"}, {"/a/", "b"}, {"", "b"}, {"/a", "/b"}}) {
    CHECK(path_join(base, relative) == (std::filesystem::path(base) / relative).string());
  }
}

TEST_CASE("lexically_normal agrees with filesystem::path, without a trailing slash") {
  for (const char* text : {"/", "/a/b", "/a//b/", "/a/./b/..", "/../a", "/a/b/../../..", "a/../..",
                           "a/./b", "./", "a/..", "//x///y", "/var/lib/../lib/bootstate/"}) {
    std::string expected = std::filesystem::path(text).lexically_normal().string();
    while (expected.size() > 1 && expected.back() == '/') expected.pop_back();
    CHECK_MESSAGE(lexically_normal(text) == expected, text);
  }
  CHECK(lexically_normal("") == "");
}

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "bootstate-dir-XXXXXX");
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_CASE("make_directories creates every missing parent and accepts existing ones") {
  TempDir temp;
  const std::string deep = temp.path + "/a/b/c";
  REQUIRE(make_directories(deep));
  CHECK(std::filesystem::is_directory(deep));
  CHECK(make_directories(deep));
  CHECK(make_directories(temp.path + "/a//b/"));
  std::ofstream(temp.path + "/file") << "x";
  auto blocked = make_directories(temp.path + "/file/sub");
  REQUIRE_FALSE(blocked);
  CHECK(blocked.error().message.find(temp.path + "/file/sub") != std::string::npos);
}

TEST_CASE("list_directory names the entries, and a missing directory is NotFound") {
  TempDir temp;
  std::ofstream(temp.path + "/one") << "1";
  REQUIRE(make_directories(temp.path + "/two"));
  auto names = list_directory(temp.path);
  REQUIRE(names);
  std::sort(names->begin(), names->end());
  CHECK(*names == std::vector<std::string>{"one", "two"});
  auto missing = list_directory(temp.path + "/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::NotFound);
}

TEST_CASE("remove_tree removes a tree and never follows a symbolic link") {
  TempDir temp;
  const std::string outside = temp.path + "/outside";
  REQUIRE(make_directories(outside));
  std::ofstream(outside + "/keep") << "keep";
  const std::string tree = temp.path + "/tree";
  REQUIRE(make_directories(tree + "/sub/deeper"));
  std::ofstream(tree + "/sub/deeper/file") << "x";
  REQUIRE(::symlink(outside.c_str(), (tree + "/link-to-dir").c_str()) == 0);
  REQUIRE(::symlink((outside + "/keep").c_str(), (tree + "/link-to-file").c_str()) == 0);

  REQUIRE(remove_tree(tree));
  CHECK_FALSE(std::filesystem::exists(tree));
  CHECK(std::filesystem::exists(outside + "/keep"));

  CHECK(remove_tree(tree));  // missing: success
  const std::string link = temp.path + "/top-link";
  REQUIRE(::symlink(outside.c_str(), link.c_str()) == 0);
  REQUIRE(remove_tree(link));  // the link goes, its target stays
  CHECK_FALSE(std::filesystem::is_symlink(link));
  CHECK(std::filesystem::exists(outside + "/keep"));
}

TEST_CASE("path_inside keeps every path inside the root (issue 13, item 15)") {
  CHECK(path_inside("/tmp/root", "/proc/cmdline") == "/tmp/root/proc/cmdline");
  CHECK(path_inside("/tmp/root", "/nix/store/../../../../etc/init") == "/tmp/root/etc/init");
  CHECK(path_inside("/tmp/root", "/nix/store/gen/../gen2") == "/tmp/root/nix/store/gen2");
  CHECK(path_inside("/tmp/root", "boot") == "/tmp/root/boot");  // relative: from the root
  CHECK(path_inside("/tmp/root", "../../boot") == "/tmp/root/boot");
  CHECK(path_inside("/tmp/root", "/") == "/tmp/root");
  CHECK(path_inside("/tmp/root", "..") == "/tmp/root");
  CHECK(path_inside("/tmp/root", "") == "/tmp/root");
  CHECK(path_inside("rel", "/../x") == "rel/x");
  // No root: as given, a relative path from the cwd.
  CHECK(path_inside("", "boot") == "boot");
  CHECK(path_inside("", "/a/../b") == "/a/../b");
  for (const char* hostile : {"/..", "/../..", "../../../x", "/a/../../../b", "a/./../..//c"}) {
    const std::string inside = path_inside("/r", hostile);
    CHECK(inside.rfind("/r", 0) == 0);
    CHECK(inside.find("..") == std::string::npos);
  }
}

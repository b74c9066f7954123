// FileBackupStore on real directory trees: everything a snapshot must keep (contents, modes,
// owners, timestamps, user xattrs, hard links, symlinks, fifos), restore of changed, removed
// and new paths, idempotence, and recovery from interrupted snapshots and restores.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "stage2/backup.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::read_text;
using bootstate::test::TempDir;
using bootstate::test::write_text;
namespace fs = std::filesystem;

namespace {

std::string xattrs_of(const std::string& path) {
  std::vector<char> names(4096);
  ssize_t size = ::llistxattr(path.c_str(), names.data(), names.size());
  if (size <= 0) return "";
  std::vector<std::string> list;
  for (ssize_t at = 0; at < size;) {
    std::string name(names.data() + at);
    at += static_cast<ssize_t>(name.size()) + 1;
    if (!name.starts_with("user.")) continue;  // security.* depends on the machine
    std::vector<char> value(4096);
    ssize_t length = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    list.push_back(name + "=" + std::string(value.data(), static_cast<std::size_t>(length)));
  }
  std::sort(list.begin(), list.end());
  std::string text;
  for (const auto& item : list) text += " " + item;
  return text;
}

// Everything the store promises to keep about each object below `top` (itself included),
// one line per relative path; hard links appear as "link-of <first path with that inode>".
std::map<std::string, std::string> describe_tree(const std::string& top) {
  std::vector<std::string> paths = {top};
  if (fs::is_directory(fs::symlink_status(top))) {
    for (const auto& entry : fs::recursive_directory_iterator(top)) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::map<std::string, std::string> description;
  std::map<ino_t, std::string> first_with_inode;
  for (const auto& path : paths) {
    struct stat status {};
    REQUIRE(::lstat(path.c_str(), &status) == 0);
    std::string relative = path == top ? "." : path.substr(top.size() + 1);
    std::string line =
        fmt::format("mode {:o} owner {}:{}", status.st_mode, status.st_uid, status.st_gid);
    line += fmt::format(" mtime {}.{}", status.st_mtim.tv_sec, status.st_mtim.tv_nsec);
    if (S_ISREG(status.st_mode)) line += " data " + read_text(path);
    if (S_ISLNK(status.st_mode)) line += " target " + fs::read_symlink(path).string();
    line += xattrs_of(path);
    if (!S_ISDIR(status.st_mode) && status.st_nlink > 1) {
      auto [found, inserted] = first_with_inode.emplace(status.st_ino, relative);
      if (!inserted) line += " link-of " + found->second;
    }
    description[relative] = line;
  }
  return description;
}

void set_mtime(const std::string& path, time_t seconds) {
  const struct timespec times[2] = {{seconds, 0}, {seconds, 123456789}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

bool user_xattrs_supported(const std::string& dir) {
  std::string probe = dir + "/xattr-probe";
  write_text(probe, "");
  bool supported = ::setxattr(probe.c_str(), "user.probe", "1", 1, 0) == 0;
  ::unlink(probe.c_str());
  return supported;
}

// A root tree with an application directory holding every kind of object the store keeps.
struct Machine {
  Machine() : store(root.path(), root / "var/lib/bootstate/backups") {
    fs::create_directories(root / "etc/app/sub");
    write_text(root / "etc/app/config", "port=1\n");
    ::chmod((root / "etc/app/config").c_str(), 0640);
    write_text(root / "etc/app/sub/data", "payload");
    write_text(root / "etc/app/hard1", "shared");
    REQUIRE(::link((root / "etc/app/hard1").c_str(), (root / "etc/app/sub/hard2").c_str()) == 0);
    fs::create_symlink("config", root / "etc/app/link");
    REQUIRE(::mkfifo((root / "etc/app/fifo").c_str(), 0600) == 0);
    write_text(root / "etc/single", "single\n");
    ::chmod((root / "etc/single").c_str(), 04755);
    for (const char* path : {"etc/app/config", "etc/app/sub/data", "etc/app/hard1", "etc/app/link",
                             "etc/app/fifo", "etc/single"}) {
      set_mtime(root / path, 1'600'000'000);
    }
  }
  TempDir root;
  FileBackupStore store;
  const std::vector<std::string> paths = {"/etc/app", "/etc/single", "/etc/new"};
};

// Changes everything the snapshot covers.
void mess_up(Machine& m) {
  write_text(m.root / "etc/app/config", "port=2\n");
  ::chmod((m.root / "etc/app/config").c_str(), 0666);
  fs::remove_all(m.root / "etc/app/sub");
  write_text(m.root / "etc/app/added", "new file");
  fs::remove(m.root / "etc/app/link");
  fs::create_symlink("/elsewhere", m.root / "etc/app/link");
  fs::remove(m.root / "etc/single");
  fs::create_directories(m.root / "etc/single/now-a-directory");  // restore changes the type
  fs::create_directories(m.root / "etc/new/deep");
  write_text(m.root / "etc/new/deep/file", "x");
}

}  // namespace

TEST_CASE("restore puts files, directories, modes, times, links and fifos back exactly") {
  Machine m;
  auto app_before = describe_tree(m.root / "etc/app");
  auto single_before = describe_tree(m.root / "etc/single");
  REQUIRE(m.store.snapshot("app-1", m.paths));
  CHECK(fs::exists(m.store.snapshot_dir("app-1") + "/manifest"));

  mess_up(m);
  REQUIRE(m.store.restore("app-1", 1));
  CHECK(describe_tree(m.root / "etc/app") == app_before);
  CHECK(describe_tree(m.root / "etc/single") == single_before);
  CHECK_FALSE(fs::exists(fs::symlink_status(m.root / "etc/new")));  // absent at snapshot time

  struct stat one {
  }, two{};
  REQUIRE(::stat((m.root / "etc/app/hard1").c_str(), &one) == 0);
  REQUIRE(::stat((m.root / "etc/app/sub/hard2").c_str(), &two) == 0);
  CHECK(one.st_ino == two.st_ino);  // one inode, as before
  CHECK(one.st_nlink == 2);
  CHECK(fs::read_symlink(m.root / "etc/app/link") == "config");
  CHECK(fs::is_fifo(m.root / "etc/app/fifo"));
  // No temporary siblings are left next to the restored paths.
  for (const auto& entry : fs::directory_iterator(m.root / "etc")) {
    CHECK_MESSAGE(entry.path().filename().string()[0] != '.', entry.path());
  }
}

TEST_CASE("restore is idempotent") {
  Machine m;
  // /etc itself is not backed up: the renames in it change its timestamps.
  auto below_etc = [&m] {
    auto description = describe_tree(m.root / "etc");
    description.erase(".");
    return description;
  };
  auto before = below_etc();
  REQUIRE(m.store.snapshot("app-1", m.paths));
  mess_up(m);
  REQUIRE(m.store.restore("app-1", 1));
  auto once = below_etc();
  CHECK(once == before);
  REQUIRE(m.store.restore("app-1", 1));
  CHECK(below_etc() == once);
}

TEST_CASE("owners are kept (chown 1234:5678, needs root)") {
  if (::geteuid() != 0) {
    WARN_MESSAGE(false, "skipped: changing a file's owner to another user needs root");
    return;
  }
  Machine m;
  REQUIRE(::lchown((m.root / "etc/app/config").c_str(), 1234, 5678) == 0);
  REQUIRE(::lchown((m.root / "etc/app/link").c_str(), 1234, 5678) == 0);
  REQUIRE(::lchown((m.root / "etc/app").c_str(), 4321, 8765) == 0);
  ::chmod((m.root / "etc/single").c_str(), 04755);  // lchown below clears set-user-ID
  REQUIRE(::lchown((m.root / "etc/single").c_str(), 1234, 5678) == 0);
  REQUIRE(::chmod((m.root / "etc/single").c_str(), 04755) == 0);
  auto before = describe_tree(m.root / "etc/app");
  auto single = describe_tree(m.root / "etc/single");
  REQUIRE(m.store.snapshot("owners", m.paths));
  REQUIRE(::lchown((m.root / "etc/app/config").c_str(), 0, 0) == 0);
  REQUIRE(::lchown((m.root / "etc/app").c_str(), 0, 0) == 0);
  REQUIRE(::lchown((m.root / "etc/single").c_str(), 0, 0) == 0);
  REQUIRE(m.store.restore("owners", 1));
  CHECK(describe_tree(m.root / "etc/app") == before);
  CHECK(describe_tree(m.root / "etc/single") == single);
  struct stat status {};
  REQUIRE(::stat((m.root / "etc/single").c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 04755);
  CHECK(status.st_uid == 1234);
}

TEST_CASE("user.* extended attributes are kept") {
  TempDir probe;
  if (!user_xattrs_supported(probe.path())) {
    WARN_MESSAGE(
        false, "skipped: the file system of " << probe.path() << " does not support user.* xattrs");
    return;
  }
  Machine m;
  std::string config = m.root / "etc/app/config";
  REQUIRE(::setxattr(config.c_str(), "user.note", "kept", 4, 0) == 0);
  REQUIRE(::setxattr((m.root / "etc/app").c_str(), "user.dir", "d", 1, 0) == 0);
  auto before = describe_tree(m.root / "etc/app");
  REQUIRE(m.store.snapshot("xattrs", m.paths));
  REQUIRE(::setxattr(config.c_str(), "user.note", "changed", 7, 0) == 0);
  REQUIRE(::setxattr(config.c_str(), "user.added", "x", 1, 0) == 0);
  REQUIRE(::removexattr((m.root / "etc/app").c_str(), "user.dir") == 0);
  REQUIRE(m.store.restore("xattrs", 1));
  CHECK(describe_tree(m.root / "etc/app") == before);
  CHECK(xattrs_of(config) == " user.note=kept");
}

TEST_CASE("an incomplete earlier snapshot is replaced, a complete one is superseded") {
  Machine m;
  std::string building = m.root / "var/lib/bootstate/backups/.app-1.tmp";
  fs::create_directories(building + "/data/0");
  write_text(building + "/data/0/garbage", "from an interrupted snapshot");
  REQUIRE(m.store.snapshot("app-1", m.paths));
  CHECK_FALSE(fs::exists(building));

  write_text(m.root / "etc/single", "second version\n");
  REQUIRE(m.store.snapshot("app-1", m.paths));  // taken again: the new one counts
  CHECK_FALSE(fs::exists(building));
  CHECK_FALSE(fs::exists(building + ".old"));
  write_text(m.root / "etc/single", "third version\n");
  REQUIRE(m.store.restore("app-1", 1));
  CHECK(read_text(m.root / "etc/single") == "second version\n");
}

TEST_CASE("an interrupted restore is completed by running it again") {
  Machine m;
  auto before = describe_tree(m.root / "etc/app");
  REQUIRE(m.store.snapshot("app-1", m.paths));
  mess_up(m);
  // What a power cut leaves: a half-made copy and an old object next to the target.
  std::string fresh = m.root / ("etc/.bootstate-restore-" + text_digest("app"));
  std::string aside = m.root / ("etc/.bootstate-old-" + text_digest("single"));
  fs::create_directories(fresh);
  write_text(fresh + "/partial", "half");
  write_text(aside, "old");
  REQUIRE(m.store.restore("app-1", 1));
  CHECK(describe_tree(m.root / "etc/app") == before);
  CHECK_FALSE(fs::exists(fresh));
  CHECK_FALSE(fs::exists(aside));
}

TEST_CASE("a path whose parent is gone is restored with its parent recreated") {
  Machine m;
  REQUIRE(m.store.snapshot("app-1", {"/etc/app/sub/data"}));
  fs::remove_all(m.root / "etc/app");
  REQUIRE(m.store.restore("app-1", 1));
  CHECK(read_text(m.root / "etc/app/sub/data") == "payload");
}

TEST_CASE("restore without a snapshot, discard, and invalid input") {
  Machine m;
  auto missing = m.store.restore("never", 1);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::NotFound);
  CHECK(missing.error().message.find("restore of migration never") != std::string::npos);
  CHECK(missing.error().message.find("/never/manifest") != std::string::npos);

  CHECK(m.store.discard("never"));  // missing is success
  REQUIRE(m.store.snapshot("app-1", m.paths));
  CHECK(m.store.discard("app-1"));
  CHECK_FALSE(fs::exists(m.store.snapshot_dir("app-1")));
  CHECK(m.store.discard("app-1"));

  for (const char* bad : {"relative", "/", "/etc/../x", "/etc//x", "/a\nb"}) {
    auto rejected = m.store.snapshot("bad", {bad});
    REQUIRE_FALSE(rejected);
    CHECK(rejected.error().code == ErrorCode::InvalidInput);
  }
  CHECK(m.store.snapshot("../escape", {"/etc/app"}).error().code == ErrorCode::InvalidInput);
  for (const char* holds_store : {"/var", "/var/lib/bootstate/backups"}) {
    auto refused = m.store.snapshot("self", {holds_store});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::InvalidInput);
    CHECK(refused.error().message.find("contains the backup store") != std::string::npos);
  }
  CHECK(m.store.snapshot("sibling", {"/var/lib/bootstate-other"}));
}

TEST_CASE("errors name the path and errno") {
  Machine m;
  FileBackupStore store(m.root.path(), m.root / "etc/single/backups");  // a file, not a dir
  auto failed = store.snapshot("app-1", {"/etc/app"});
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == ErrorCode::Io);
  CHECK(failed.error().message.find("backup of migration app-1") != std::string::npos);
  CHECK(failed.error().message.find(m.root / "etc/single/backups") != std::string::npos);
  CHECK(failed.error().message.find("Not a directory") != std::string::npos);
}

// Issue 13, item 1 ("Nothing lost"): a backup restore keeps what was written since the backup
// under <data>/displaced/ATTEMPT/MIGRATION/PATH; and item 12: a restore follows no symlink that
// the backup did not have, so a link planted after the backup cannot make root change files
// outside the backed-up path.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "stage2/backup.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;
using bootstate::test::read_text;
using bootstate::test::TempDir;
using bootstate::test::write_text;
namespace fs = std::filesystem;

namespace {

// Every path below `top` with its type and content: a change anywhere shows.
std::map<std::string, std::string> contents_of(const std::string& top) {
  std::map<std::string, std::string> seen;
  for (const auto& entry : fs::recursive_directory_iterator(top)) {
    const auto status = fs::symlink_status(entry.path());
    std::string what = fs::is_symlink(status) ? "link " + fs::read_symlink(entry.path()).string()
                       : fs::is_directory(status) ? "dir"
                                                  : "file " + read_text(entry.path());
    seen[entry.path().string().substr(top.size())] = what;
  }
  return seen;
}

struct AppMachine {
  AppMachine() : store(root.path(), root / "var/lib/bootstate/backups") {
    fs::create_directories(root / "var/lib/app/sub");
    write_text(root / "var/lib/app/config", "v1\n");
    write_text(root / "var/lib/app/same", "unchanged\n");
    write_text(root / "var/lib/app/sub/data", "payload");
    fs::create_directories(root / "etc-like");
    write_text(root / "etc-like/passwd", "root:x:0:0\n");
    write_text(root / "etc-like/data", "not yours\n");
  }
  std::string displaced(const std::string& attempt_and_rest) const {
    return root / ("var/lib/bootstate/displaced/" + attempt_and_rest);
  }
  TempDir root;
  FileBackupStore store;
};

}  // namespace

TEST_CASE("a restore moves what was written since the backup aside instead of deleting it") {
  AppMachine m;
  REQUIRE(m.store.snapshot("app-2", {"/var/lib/app"}));
  // gen2's service ran: a new database, a changed config, a new directory.
  write_text(m.root / "var/lib/app/orders.db", "order 1\norder 2\n");
  write_text(m.root / "var/lib/app/config", "v2\n");
  fs::create_directories(m.root / "var/lib/app/cache/x");
  write_text(m.root / "var/lib/app/cache/x/blob", "b");

  auto moved = m.store.restore("app-2", 7);
  REQUIRE(moved);
  // Restored exactly.
  CHECK(read_text(m.root / "var/lib/app/config") == "v1\n");
  CHECK_FALSE(fs::exists(m.root / "var/lib/app/orders.db"));
  CHECK_FALSE(fs::exists(m.root / "var/lib/app/cache"));
  // Kept, each at its path below displaced/ATTEMPT/MIGRATION.
  CHECK(read_text(m.displaced("7/app-2/var/lib/app/orders.db")) == "order 1\norder 2\n");
  CHECK(read_text(m.displaced("7/app-2/var/lib/app/config")) == "v2\n");
  CHECK(read_text(m.displaced("7/app-2/var/lib/app/cache/x/blob")) == "b");
  // Only what differs: files equal to the backup are not displaced.
  CHECK_FALSE(fs::exists(m.displaced("7/app-2/var/lib/app/same")));
  CHECK_FALSE(fs::exists(m.displaced("7/app-2/var/lib/app/sub")));
  std::vector<std::string> expected = {m.displaced("7/app-2/var/lib/app/cache"),
                                       m.displaced("7/app-2/var/lib/app/config"),
                                       m.displaced("7/app-2/var/lib/app/orders.db")};
  CHECK(*moved == expected);
}

TEST_CASE("a path absent at backup time is displaced whole, not deleted") {
  AppMachine m;
  REQUIRE(m.store.snapshot("new-1", {"/var/lib/fresh"}));
  fs::create_directories(m.root / "var/lib/fresh/deep");
  write_text(m.root / "var/lib/fresh/deep/file", "written later");
  auto moved = m.store.restore("new-1", 3);
  REQUIRE(moved);
  CHECK_FALSE(fs::exists(m.root / "var/lib/fresh"));
  CHECK(read_text(m.displaced("3/new-1/var/lib/fresh/deep/file")) == "written later");
  CHECK(moved->size() == 1);
}

TEST_CASE("an unchanged tree displaces nothing, and a second restore overwrites nothing kept") {
  AppMachine m;
  REQUIRE(m.store.snapshot("app-2", {"/var/lib/app"}));
  auto none = m.store.restore("app-2", 1);
  REQUIRE(none);
  CHECK(none->empty());
  CHECK_FALSE(fs::exists(m.root / "var/lib/bootstate/displaced"));

  write_text(m.root / "var/lib/app/orders.db", "first");
  REQUIRE(m.store.restore("app-2", 1));
  write_text(m.root / "var/lib/app/orders.db", "second");
  REQUIRE(m.store.restore("app-2", 1));
  CHECK(read_text(m.displaced("1/app-2/var/lib/app/orders.db")) == "first");
  CHECK(read_text(m.displaced("1/app-2/var/lib/app/orders.db.1")) == "second");
}

TEST_CASE("a directory inside the backup replaced by a symlink is not followed") {
  AppMachine m;
  REQUIRE(m.store.snapshot("app-2", {"/var/lib/app"}));
  auto outside_before = contents_of(m.root / "etc-like");
  // The service's owner replaces sub/ (which the backup has) by a link to a directory outside.
  fs::remove_all(m.root / "var/lib/app/sub");
  fs::create_directory_symlink(m.root / "etc-like", m.root / "var/lib/app/sub");

  auto moved = m.store.restore("app-2", 2);
  REQUIRE(moved);
  CHECK(contents_of(m.root / "etc-like") == outside_before);
  CHECK(fs::is_directory(fs::symlink_status(m.root / "var/lib/app/sub")));
  CHECK(read_text(m.root / "var/lib/app/sub/data") == "payload");
  // The planted link itself is kept, as a link.
  CHECK(fs::is_symlink(fs::symlink_status(m.displaced("2/app-2/var/lib/app/sub"))));
}

TEST_CASE("a parent of a backed-up path replaced by someone else's symlink stops the restore") {
  AppMachine m;
  REQUIRE(m.store.snapshot("data-1", {"/var/lib/app/sub/data"}));
  auto outside_before = contents_of(m.root / "etc-like");
  fs::remove_all(m.root / "var/lib/app/sub");
  fs::create_directory_symlink(m.root / "etc-like", m.root / "var/lib/app/sub");
  // Made by an unprivileged owner (uid 65534), not by root.
  REQUIRE(::fchownat(AT_FDCWD, (m.root / "var/lib/app/sub").c_str(), 65534, 65534,
                     AT_SYMLINK_NOFOLLOW) == 0);

  auto moved = m.store.restore("data-1", 1);
  REQUIRE_FALSE(moved);
  CHECK(moved.error().message.find(m.root / "var/lib/app/sub" + " is a symlink") !=
        std::string::npos);
  CHECK(contents_of(m.root / "etc-like") == outside_before);
}

TEST_CASE("a parent that root made a symlink in a directory only root writes is followed") {
  AppMachine m;
  fs::create_directories(m.root / "persist/app");
  write_text(m.root / "persist/app/state", "s1");
  fs::create_directory_symlink(m.root / "persist/app", m.root / "var/lib/linked");
  ::chmod((m.root / "var/lib").c_str(), 0755);
  REQUIRE(m.store.snapshot("linked-1", {"/var/lib/linked/state"}));
  write_text(m.root / "persist/app/state", "s2");
  REQUIRE(m.store.restore("linked-1", 1));
  CHECK(read_text(m.root / "persist/app/state") == "s1");
  CHECK(fs::is_symlink(fs::symlink_status(m.root / "var/lib/linked")));
}

TEST_CASE("displaced items on another file system are copied exactly, then removed") {
  if (!fs::is_directory("/dev/shm")) return;
  AppMachine m;
  std::string pattern = "/dev/shm/bootstate-displaced-XXXXXX";
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  FileBackupStore store(m.root.path(), pattern + "/backups");
  REQUIRE(store.snapshot("app-2", {"/var/lib/app"}));
  write_text(m.root / "var/lib/app/orders.db", "order 1\n");
  auto moved = store.restore("app-2", 4);
  fs::path kept = pattern + "/displaced/4/app-2/var/lib/app/orders.db";
  bool ok = moved.has_value() && read_text(kept) == "order 1\n" &&
            !fs::exists(m.root / "var/lib/app/orders.db");
  fs::remove_all(pattern);
  CHECK(ok);
}

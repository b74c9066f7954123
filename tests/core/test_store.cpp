// The two-slot store over the strict in-memory fake, and SlotFiles over real directories
// (a temp dir; size-limited and read-only tmpfs mounts when running as root).
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "core/crc32c.hpp"
#include "core/slot_files.hpp"
#include "core/state_codec.hpp"
#include "core/store.hpp"
#include "tests/support/fake_slot_storage.hpp"
#include "tests/support/pieces_reader.hpp"

namespace bootstate {
namespace {

using testing::FakeSlotStorage;

State state_named(std::string generation) {
  State state;
  state.last_good_generation = std::move(generation);
  return state;
}

std::string generation_in_slot(FakeSlotStorage& storage, int slot) {
  REQUIRE(storage.slot(slot).has_value());
  auto contents = decode_slot(*storage.slot(slot));
  REQUIRE(contents.has_value());
  auto state = decode_state(contents->payload);
  REQUIRE(state.has_value());
  return state->last_good_generation;
}

LoadResult load_ok(StateStore& store) {
  auto result = store.load();
  REQUIRE_MESSAGE(result.has_value(), (result ? std::string() : result.error().message));
  return std::move(*result);
}

// A state like a machine's after `count` migrations: every kind of field, escapes, non-ASCII.
State many_migrations(int count) {
  State state = state_named("/nix/store/aaaa-nixos-system");
  state.next_attempt_number = 12;
  for (int i = 0; i < count; ++i) {
    MigrationRecord migration;
    migration.id = "migration-" + std::to_string(i);
    migration.state = i % 7 == 3 ? MigrationState::Failed : MigrationState::Applied;
    migration.digest = "0123456789abcdef";
    migration.definition_json =
        R"({"id":"m","steps":[{"id":"a","command":["/bin/echo","\"quoted\" é"]}]})";
    migration.generation = "/nix/store/bbbb-nixos-system-" + std::to_string(i);
    migration.attempt = static_cast<std::uint64_t>(i);
    for (int s = 0; s < 3; ++s) {
      StepRecord step;
      step.id = std::string(1, static_cast<char>('a' + s));
      step.state = StepState::Done;
      step.attempts = 1;
      step.exit_status = -s;
      step.message = "exit status 0\n\ttab ünïcode";
      step.started_usec = 1'700'000'000'000'000 + i;
      migration.steps.push_back(step);
    }
    state.migrations.push_back(migration);
  }
  return state;
}

// The fake, but each slot is read through open_reader in pieces of `piece` bytes (read() is
// what a whole read counts: FakeSlotStorage::reads).
class PiecewiseSlots : public FakeSlotStorage {
 public:
  explicit PiecewiseSlots(std::size_t piece) : piece_(piece) {}
  Expected<std::unique_ptr<Reader>> open_reader(int slot) override {
    const std::optional<std::string>& bytes = this->slot(slot);
    if (!bytes) return std::unique_ptr<Reader>();
    return std::unique_ptr<Reader>(std::make_unique<testing::PiecesReader>(*bytes, piece_));
  }

 private:
  std::size_t piece_;
};

}  // namespace

TEST_CASE("store: no slots is a fresh state at sequence 0, and nothing is written") {
  FakeSlotStorage storage;
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.fresh);
  CHECK_FALSE(result.moved_aside);
  CHECK(result.sequence == 0);
  CHECK(result.warnings.empty());
  CHECK(storage.writes() == 0);
  CHECK(storage.move_asides() == 0);
}

TEST_CASE("store: commits alternate slots, one write each, with increasing sequences") {
  FakeSlotStorage storage;
  StateStore store(storage);
  for (int commit = 1; commit <= 5; ++commit) {
    REQUIRE(store.commit(state_named(fmt::format("g{}", commit))).has_value());
    CHECK(storage.writes() == commit);
    CHECK(store.sequence() == static_cast<std::uint64_t>(commit));
  }
  CHECK(storage.written_slots() == std::vector<int>{0, 1, 0, 1, 0});
  CHECK(generation_in_slot(storage, 0) == "g5");
  CHECK(generation_in_slot(storage, 1) == "g4");
  CHECK(storage.misuses() == 0);

  StateStore reopened(storage);
  const LoadResult result = load_ok(reopened);
  CHECK_FALSE(result.fresh);
  CHECK(result.sequence == 5);
  CHECK(result.state.last_good_generation == "g5");
  REQUIRE(reopened.commit(state_named("g6")).has_value());
  CHECK(storage.written_slots().back() == 1);
}

TEST_CASE("store: the highest sequence wins, whichever slot holds it") {
  FakeSlotStorage storage;
  storage.slot(0) = encode_slot(6, encode_state(state_named("six")));
  storage.slot(1) = encode_slot(7, encode_state(state_named("seven")));
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.sequence == 7);
  CHECK(result.state.last_good_generation == "seven");
  REQUIRE(store.commit(state_named("eight")).has_value());
  CHECK(storage.written_slots() == std::vector<int>{0});
  CHECK(decode_slot(*storage.slot(0))->sequence == 8);
}

TEST_CASE("store: commit before load loads first and targets the older slot") {
  FakeSlotStorage storage;
  storage.slot(0) = encode_slot(3, encode_state(state_named("three")));
  storage.slot(1) = encode_slot(2, encode_state(state_named("two")));
  StateStore store(storage);
  REQUIRE(store.commit(state_named("four")).has_value());
  CHECK(storage.written_slots() == std::vector<int>{1});
  CHECK(decode_slot(*storage.slot(1))->sequence == 4);
  CHECK(generation_in_slot(storage, 0) == "three");
}

TEST_CASE("store: a failed write keeps the last commit, and the next commit works") {
  FakeSlotStorage storage;
  StateStore store(storage);
  REQUIRE(store.commit(state_named("A")).has_value());
  storage.fail_write(2);
  auto failed = store.commit(state_named("B"));
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code == ErrorCode::Io);
  CHECK(failed.error().message ==
        "while committing state sequence 2 to slot 1 in memory: write memory slot 1: No space "
        "left on device");
  CHECK(store.sequence() == 1);
  CHECK(generation_in_slot(storage, 0) == "A");
  {
    StateStore reader(storage);
    CHECK(load_ok(reader).state.last_good_generation == "A");
  }
  REQUIRE(store.commit(state_named("C")).has_value());
  CHECK(storage.written_slots() == std::vector<int>{0, 1, 1});
  CHECK(store.sequence() == 2);
  StateStore reader(storage);
  const LoadResult result = load_ok(reader);
  CHECK(result.state.last_good_generation == "C");
  CHECK(result.sequence == 2);
}

TEST_CASE("store: a torn write is ignored with a warning naming the slot") {
  FakeSlotStorage storage;
  StateStore store(storage);
  REQUIRE(store.commit(state_named("A")).has_value());
  storage.tear_write(2, 40);
  REQUIRE_FALSE(store.commit(state_named("B")).has_value());
  StateStore reader(storage);
  const LoadResult result = load_ok(reader);
  CHECK(result.state.last_good_generation == "A");
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0].rfind("state slot 1 in memory is unusable and was ignored: "
                                 "length mismatch",
                                 0) == 0);
  REQUIRE(reader.commit(state_named("B")).has_value());
  CHECK(storage.written_slots().back() == 1);
}

TEST_CASE("store: a slot with a valid frame but an undecodable payload counts as corrupt") {
  FakeSlotStorage storage;
  storage.slot(0) = encode_slot(4, encode_state(state_named("four")));
  storage.slot(1) = encode_slot(5, R"({"payload_version":1,"attempt":{"state":2}})");
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.sequence == 4);
  CHECK(result.state.last_good_generation == "four");
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0] ==
        "state slot 1 in memory is unusable and was ignored: state payload: attempt.state: "
        "value of the wrong type");
  // The undecodable slot is the one overwritten next: sequence 5 is used again, after 4.
  REQUIRE(store.commit(state_named("next")).has_value());
  CHECK(storage.written_slots() == std::vector<int>{1});
  CHECK(decode_slot(*storage.slot(1))->sequence == 5);
}

TEST_CASE("store: every slot corrupt moves them aside and starts fresh, with a warning") {
  FakeSlotStorage storage;
  storage.slot(0) = "garbage";
  storage.slot(1) = encode_slot(9, "{not json");
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.fresh);
  CHECK(result.moved_aside);
  CHECK(result.sequence == 0);
  CHECK(storage.move_asides() == 1);
  REQUIRE(storage.broken().size() == 2);
  CHECK(storage.broken()[0].second == "garbage");
  REQUIRE(result.warnings.size() == 3);
  CHECK(result.warnings[2] ==
        "no valid state slot in memory: the slots were moved aside (.broken) and a fresh state "
        "was started");
  CHECK(storage.writes() == 0);
  REQUIRE(store.commit(state_named("fresh")).has_value());
  CHECK(storage.written_slots() == std::vector<int>{0});
  CHECK(decode_slot(*storage.slot(0))->sequence == 1);
}

TEST_CASE("store: a read-only load moves nothing and says what a load for update will do") {
  FakeSlotStorage storage;
  storage.slot(0) = "garbage";
  storage.slot(1) = encode_slot(9, "{not json");
  StateStore store(storage);
  auto result = store.load(LoadMode::ReadOnly);
  REQUIRE(result.has_value());
  CHECK(result->fresh);
  CHECK_FALSE(result->moved_aside);
  CHECK(result->would_move_aside);
  CHECK(storage.move_asides() == 0);
  CHECK(storage.writes() == 0);
  CHECK(*storage.slot(0) == "garbage");
  REQUIRE(result->warnings.size() == 3);
  CHECK(result->warnings[0].find("`bootstate run` will ignore it") != std::string::npos);
  CHECK(result->warnings[2].find("`bootstate run` will move them aside") != std::string::npos);
  for (const std::string& warning : result->warnings) {
    CHECK(warning.find("moved aside (") == std::string::npos);
    CHECK(warning.find("was ignored") == std::string::npos);
  }
  // A commit after a read-only load loads for update first: only then is the store moved.
  REQUIRE(store.commit(state_named("fresh")).has_value());
  CHECK(storage.move_asides() == 1);
  CHECK(decode_slot(*storage.slot(0))->sequence == 1);
}

TEST_CASE("store: a lone corrupt slot (a torn first commit) is moved aside too") {
  FakeSlotStorage storage;
  storage.slot(1) = encode_slot(1, "{}").substr(0, 20);
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.moved_aside);
  CHECK(storage.move_asides() == 1);
}

TEST_CASE("store: a newer format in the newest slot is Unsupported and nothing is touched") {
  FakeSlotStorage storage;
  std::string newer = encode_slot(8, "format two payload");
  newer[8] = 2;  // format version 2, checksum recomputed below
  const std::uint32_t crc =
      crc32c(std::string_view(newer).substr(32), crc32c(std::string_view(newer).substr(0, 28)));
  for (int i = 0; i < 4; ++i)
    newer[static_cast<std::size_t>(28 + i)] = static_cast<char>(crc >> (8 * i));
  storage.slot(0) = encode_slot(7, encode_state(state_named("seven")));
  storage.slot(1) = newer;
  StateStore store(storage);
  auto result = store.load();
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == ErrorCode::Unsupported);
  CHECK(result.error().message ==
        "state slot 1 in memory (sequence 8): state format 2 is newer than this bootstate "
        "supports (1)");
  auto commit = store.commit(state_named("must not be written"));
  REQUIRE_FALSE(commit.has_value());
  CHECK(commit.error().code == ErrorCode::Unsupported);
  CHECK(storage.writes() == 0);
  CHECK(storage.move_asides() == 0);
  CHECK(*storage.slot(1) == newer);

  // Older than the newest valid slot, a newer-format slot is just the one to overwrite.
  storage.slot(0) = encode_slot(9, encode_state(state_named("nine")));
  StateStore later(storage);
  CHECK(load_ok(later).state.last_good_generation == "nine");
}

TEST_CASE("store: an unreadable slot is skipped if the other is valid, an error otherwise") {
  FakeSlotStorage storage;
  storage.slot(0) = encode_slot(2, encode_state(state_named("two")));
  storage.slot(1) = encode_slot(3, encode_state(state_named("three")));
  storage.fail_reads(1);
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.state.last_good_generation == "two");
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0] ==
        "state slot 1 in memory is unusable and was ignored: read memory slot 1: Input/output "
        "error");

  storage.slot(0) = "garbage";
  StateStore broken(storage);
  auto failed = broken.load();
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code == ErrorCode::Io);
  CHECK(storage.move_asides() == 0);
}

// Issue #17 item 4: a load reads the older slot only to check its frame (into the buffer the
// newest slot is then read into), decides on the newest alone, and still reports a damaged
// older slot, as every torn or corrupt slot is reported.
TEST_CASE("store: the newest slot is decided on alone; a damaged older slot is still reported") {
  FakeSlotStorage storage;
  storage.slot(0) = encode_slot(6, encode_state(state_named("six")));
  storage.slot(1) = encode_slot(7, encode_state(state_named("seven")));
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.state.last_good_generation == "seven");
  CHECK(result.warnings.empty());
  CHECK(storage.reads(0) == 1);
  CHECK(storage.reads(1) == 1);
  REQUIRE(store.commit(state_named("eight")).has_value());  // to the older slot, as before
  CHECK(storage.written_slots() == std::vector<int>{0});

  // The older slot (1, sequence 7) damaged behind an intact head: reported, not used.
  storage.slot(1)->back() ^= 1;
  StateStore damaged_older(storage);
  const LoadResult older = load_ok(damaged_older);
  CHECK(older.state.last_good_generation == "eight");
  REQUIRE(older.warnings.size() == 1);
  CHECK(older.warnings[0].rfind(
            "state slot 1 in memory is unusable and was ignored: checksum mismatch", 0) == 0);

  // The newest slot (0, sequence 8) torn behind an intact head: the older one is taken if
  // intact; here it is damaged too, so both are reported and the store is moved aside.
  storage.slot(0)->back() ^= 1;
  StateStore both(storage);
  const LoadResult none = load_ok(both);
  CHECK(none.moved_aside);
  CHECK(none.warnings.size() == 3);
}

TEST_CASE("fake slot storage: strict about slot indexes") {
  FakeSlotStorage storage;
  CHECK(storage.read(2).error().code == ErrorCode::InvalidInput);
  CHECK(storage.write(-1, "x").error().code == ErrorCode::InvalidInput);
  CHECK(storage.misuses() == 2);
  CHECK(storage.writes() == 0);
}

// ---------------------------------------------------------------------------------------------
// SlotFiles on real directories.

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "bootstate-store-XXXXXX");
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string file_text(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(stream), {});
}

// A tmpfs mounted at `target` in a private mount namespace (so nothing outlives the test
// process), unmounted again when the test ends, even by a failed REQUIRE.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& target, const std::string& options) : target_(target) {
    static const std::string namespace_error = [] {
      if (::geteuid() != 0) return std::string("not running as root");
      if (::unshare(CLONE_NEWNS) != 0) return "unshare(CLONE_NEWNS): " + errno_text(errno);
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        return "make / private: " + errno_text(errno);
      }
      return std::string();
    }();
    why_not_ = namespace_error;
    if (why_not_.empty() && ::mount("tmpfs", target.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      why_not_ = "mount tmpfs: " + errno_text(errno);
    }
  }
  ~TmpfsMount() {
    if (why_not_.empty()) ::umount2(target_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  // Empty when mounted, else why it is not possible here (not root, no CAP_SYS_ADMIN).
  const std::string& why_not() const { return why_not_; }

 private:
  std::string target_;
  std::string why_not_;
};

}  // namespace

TEST_CASE("slot files: absent, create, overwrite shorter, mode 0600, move aside") {
  TempDir temp;
  const std::string dir = temp.path() + "/bootstate";
  SlotFiles files(dir);
  CHECK(files.describe() == dir);
  auto absent = files.read(0);
  REQUIRE(absent.has_value());
  CHECK_FALSE(absent->has_value());

  REQUIRE(files.write(1, "a longer first content").has_value());  // creates the directory
  CHECK(file_text(dir + "/state.1") == "a longer first content");
  struct stat info {};
  REQUIRE(::stat((dir + "/state.1").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  REQUIRE(files.write(1, "short").has_value());
  CHECK(**files.read(1) == "short");
  CHECK_FALSE(files.read(0)->has_value());

  REQUIRE(files.write(0, "zero").has_value());
  std::ofstream(dir + "/state.0.broken") << "an older broken slot";
  REQUIRE(files.move_aside().has_value());
  CHECK_FALSE(files.read(0)->has_value());
  CHECK_FALSE(files.read(1)->has_value());
  CHECK(file_text(dir + "/state.0.broken") == "zero");
  CHECK(file_text(dir + "/state.1.broken") == "short");
  REQUIRE(files.move_aside().has_value());  // nothing left to move: still fine

  CHECK(files.read(2).error().code == ErrorCode::InvalidInput);
  CHECK(files.write(-1, "x").error().code == ErrorCode::InvalidInput);
}

TEST_CASE("slot files: the store commits and reloads through real files") {
  TempDir temp;
  SlotFiles files(temp.path() + "/bootstate");
  {
    StateStore store(files);
    CHECK(load_ok(store).fresh);
    REQUIRE(store.commit(state_named("one")).has_value());
    REQUIRE(store.commit(state_named("two")).has_value());
    REQUIRE(store.commit(state_named("three")).has_value());
  }
  StateStore store(files);
  const LoadResult result = load_ok(store);
  CHECK(result.sequence == 3);
  CHECK(result.state.last_good_generation == "three");
  CHECK(result.warnings.empty());
}

TEST_CASE("slot files: errors name the path and errno text") {
  TempDir temp;
  // A regular file where the directory should be: ENOTDIR on open, for read and write alike.
  std::ofstream(temp.path() + "/file") << "x";
  SlotFiles files(temp.path() + "/file");
  auto read = files.read(0);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().code == ErrorCode::Io);
  CHECK(read.error().message == "open " + temp.path() + "/file/state.0: Not a directory");
  auto written = files.write(0, "x");
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().message == "open " + temp.path() + "/file/state.0: Not a directory");
}

TEST_CASE("slot files: ENOSPC when a slot must grow fails with the path, changes nothing") {
  TempDir temp;
  const TmpfsMount mount(temp.path(), "size=64k,mode=0700");
  if (!mount.why_not().empty()) {
    MESSAGE("skipped, no size-limited tmpfs: " << mount.why_not());
    return;
  }
  SlotFiles files(temp.path() + "/bootstate");
  StateStore store(files);
  REQUIRE(store.commit(state_named("small")).has_value());
  const std::string slot0 = **files.read(0);
  CHECK(slot0.size() % SlotFiles::kChunk == 0);  // preallocated with headroom
  CHECK(slot0.size() >= SlotFiles::kMinimumHeadroom);

  State big = state_named(std::string(256 * 1024, 'x'));  // larger than the file system
  auto failed = store.commit(big);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code == ErrorCode::Io);
  INFO(failed.error().message);
  CHECK(failed.error().message.find("reserve ") != std::string::npos);
  CHECK(failed.error().message.find(temp.path() +
                                    "/bootstate/state.1: No space left on device (the ESP is "
                                    "full)") != std::string::npos);
  CHECK(**files.read(0) == slot0);
  StateStore reader(files);
  const LoadResult result = load_ok(reader);
  CHECK(result.state.last_good_generation == "small");
  INFO((result.warnings.empty() ? std::string() : result.warnings[0]));
  CHECK(result.warnings.empty());  // the growth was reserved before slot 1 was touched

  REQUIRE(store.commit(state_named("fits again")).has_value());
  StateStore again(files);
  CHECK(load_ok(again).state.last_good_generation == "fits again");
}

TEST_CASE("slot files: on a full file system, commits that fit the slots still land") {
  TempDir temp;
  const TmpfsMount mount(temp.path(), "size=256k,mode=0700");
  if (!mount.why_not().empty()) {
    MESSAGE("skipped, no size-limited tmpfs: " << mount.why_not());
    return;
  }
  SlotFiles files(temp.path() + "/bootstate");
  StateStore store(files);
  REQUIRE(store.commit(state_named("first")).has_value());
  REQUIRE(store.commit(state_named("second")).has_value());
  {  // fill the rest of the file system
    std::ofstream filler(temp.path() + "/filler", std::ios::binary);
    const std::string block(4096, '\0');
    for (int i = 0; i < 256 && filler; ++i) filler << block << std::flush;
  }
  // Each commit grows the state by 4 KiB: within the headroom, no new block needed.
  for (int round = 1; round <= 3; ++round) {
    const std::string name = std::string(static_cast<std::size_t>(round) * 4096, 'g');
    REQUIRE(store.commit(state_named(name)).has_value());
    StateStore reader(files);
    CHECK(load_ok(reader).state.last_good_generation == name);
  }
}

TEST_CASE("slot files: a growth reserves the other slot too, for the next commit on a full disk") {
  TempDir temp;
  const TmpfsMount mount(temp.path(), "size=512k,mode=0700");
  if (!mount.why_not().empty()) {
    MESSAGE("skipped, no size-limited tmpfs: " << mount.why_not());
    return;
  }
  SlotFiles files(temp.path() + "/bootstate");
  StateStore store(files);
  REQUIRE(store.commit(state_named("a")).has_value());
  REQUIRE(store.commit(state_named("b")).has_value());
  // The state jumps by 48 KiB (an attempt recording big definitions): slot 0 grows.
  REQUIRE(store.commit(state_named(std::string(48 * 1024, 'x'))).has_value());
  {  // then a step fills the file system
    std::ofstream filler(temp.path() + "/filler", std::ios::binary);
    const std::string block(4096, '\0');
    for (int i = 0; i < 256 && filler; ++i) filler << block << std::flush;
  }
  // The next commit goes to slot 1, still at its old size: its growth was reserved.
  const std::string next(49 * 1024, 'y');
  auto committed = store.commit(state_named(next));
  INFO((committed ? std::string() : committed.error().message));
  REQUIRE(committed.has_value());
  StateStore reader(files);
  CHECK(load_ok(reader).state.last_good_generation == next);
}

TEST_CASE("slot files: a read-only file system fails writes with EROFS, reads still work") {
  TempDir temp;
  const TmpfsMount mount(temp.path(), "size=64k");
  if (!mount.why_not().empty()) {
    MESSAGE("skipped, no tmpfs mount: " << mount.why_not());
    return;
  }
  SlotFiles files(temp.path() + "/bootstate");
  REQUIRE(files.write(0, "before").has_value());
  REQUIRE(::mount(nullptr, temp.path().c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  auto written = files.write(0, "after");
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().message ==
        "open " + temp.path() + "/bootstate/state.0: Read-only file system");
  auto created = files.write(1, "new");
  REQUIRE_FALSE(created.has_value());
  CHECK(created.error().message ==
        "open " + temp.path() + "/bootstate/state.1: Read-only file system");
  CHECK(**files.read(0) == "before");
  auto moved = files.move_aside();
  REQUIRE_FALSE(moved.has_value());
  CHECK(moved.error().message.find("Read-only file system") != std::string::npos);
}

// ---- issue #13 item 9 (PARSE helper): a newer bootstate's state is never overwritten ----

TEST_CASE(
    "store: an unknown enum word in the newest slot is a newer writer's: nothing is touched") {
  // Before: the slot counted as corrupt, the older slot was loaded, and the next commit wrote
  // over the newer bootstate's state.
  FakeSlotStorage storage;
  const std::string newer =
      encode_slot(5, R"({"payload_version":2,"migrations":[{"id":"m","state":"paused"}]})");
  storage.slot(0) = encode_slot(4, encode_state(state_named("four")));
  storage.slot(1) = newer;
  StateStore store(storage);
  auto result = store.load();
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == ErrorCode::Unsupported);
  CHECK(result.error().message ==
        "state slot 1 in memory (sequence 5) was written by a newer bootstate: state payload: "
        "migrations[0].state: unknown migration state \"paused\" (written by a newer bootstate); "
        "this bootstate does not write over it (boot a generation with a bootstate that reads "
        "it)");
  auto commit = store.commit(state_named("must not be written"));
  REQUIRE_FALSE(commit.has_value());
  CHECK(commit.error().code == ErrorCode::Unsupported);
  CHECK(storage.writes() == 0);
  CHECK(storage.move_asides() == 0);
  CHECK(*storage.slot(1) == newer);

  // Older than the newest valid slot, it is the slot the next commit overwrites, as any other.
  storage.slot(0) = encode_slot(6, encode_state(state_named("six")));
  StateStore later(storage);
  CHECK(load_ok(later).state.last_good_generation == "six");
  // And alone (the other slot torn), it still refuses: it is the newest state there is.
  storage.slot(0) = encode_slot(9, encode_state(state_named("nine"))).substr(0, 40);
  StateStore alone(storage);
  auto refused = alone.load();
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == ErrorCode::Unsupported);
  CHECK(storage.move_asides() == 0);
}

TEST_CASE("store: a checksum-valid slot nested 300,000 deep is corrupt, not a crash") {
  FakeSlotStorage storage;
  const std::string deep = R"({"payload_version":1,"future":)" + std::string(300000, '[') +
                           std::string(300000, ']') + "}";
  storage.slot(0) = encode_slot(4, encode_state(state_named("four")));
  storage.slot(1) = encode_slot(5, deep);
  StateStore store(storage);
  const LoadResult result = load_ok(store);
  CHECK(result.state.last_good_generation == "four");
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0] ==
        "state slot 1 in memory is unusable and was ignored: state payload:1:158: arrays and "
        "objects nested deeper than 128 levels");
}

// A load holds no slot whole (interfaces.hpp SlotStorage::Reader): the newest is parsed as it
// is read, the older only checksummed. Pieces of 1 and 7 bytes cut the header, strings, escapes,
// numbers and the padding everywhere.
TEST_CASE("store: the newest slot is parsed as it is read, in pieces, the older checksummed") {
  const State older = many_migrations(40);
  const State newest = many_migrations(60);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
    CAPTURE(piece);
    PiecewiseSlots storage(piece);
    storage.slot(0) = encode_slot(8, encode_state(older));
    // Laid out as a commit leaves it: padded with spaces after the JSON text.
    storage.slot(1) = encode_slot(9, encode_state(newest) + std::string(3000, ' ') + "\n");
    StateStore store(storage);
    const LoadResult result = load_ok(store);
    CHECK(encode_state(result.state) == encode_state(newest));
    CHECK(result.warnings.empty());
    CHECK(store.newest_slot() == 1);
    CHECK(storage.reads(0) == 0);
    CHECK(storage.reads(1) == 0);

    // The older slot damaged behind an intact head: reported as a whole read reports it.
    storage.slot(0)->back() ^= 1;
    StateStore damaged(storage);
    const LoadResult reported = load_ok(damaged);
    CHECK(encode_state(reported.state) == encode_state(newest));
    REQUIRE(reported.warnings.size() == 1);
    CHECK(reported.warnings[0].rfind(
              "state slot 0 in memory is unusable and was ignored: checksum mismatch", 0) == 0);
    CHECK(storage.reads(0) == 0);
  }
}

// What the reader in pieces does not take, the whole reads decide, as before it existed.
TEST_CASE("store: a newest slot the pieces reader leaves is decided by whole reads") {
  const std::string older = encode_slot(8, encode_state(state_named("older")));
  auto load_with_newest = [&](const std::string& newest) {
    PiecewiseSlots storage(5);
    storage.slot(0) = older;
    storage.slot(1) = newest;
    StateStore store(storage);
    auto result = store.load();
    CHECK(storage.reads(1) == 1);  // read whole after the pieces gave up
    return result;
  };
  // Not whitespace after the JSON text: not a JSON object, as a whole read finds.
  auto junk = load_with_newest(encode_slot(9, encode_state(state_named("newest")) + " x"));
  REQUIRE(junk.has_value());
  CHECK(junk->state.last_good_generation == "older");
  REQUIRE(junk->warnings.size() == 1);
  CHECK(junk->warnings[0] ==
        "state slot 1 in memory is unusable and was ignored: state payload: not a JSON object");
  // A NUL after the JSON text: refused as any other bytes there are (the fast reader stopped at
  // it, and the document reader read up to it, but scanned past it for the limits).
  auto nul = load_with_newest(
      encode_slot(9, encode_state(state_named("newest")) + std::string("\0 x", 3)));
  REQUIRE(nul.has_value());
  CHECK(nul->state.last_good_generation == "older");
  REQUIRE(nul->warnings.size() == 1);
  CHECK(nul->warnings[0].rfind("state slot 1 in memory is unusable and was ignored: state payload:",
                               0) == 0);
  CHECK(nul->warnings[0].ends_with(": a NUL byte"));
  // The same when the fast reader leaves the text to the document reader (a field twice,
  // here): the fault named is the NUL, not the depth of what follows it.
  std::string twice = encode_state(state_named("newest"));
  twice.insert(1, R"("last_good_entry":"a","last_good_entry":"b",)");
  auto nul_deep = load_with_newest(encode_slot(9, twice + '\0' + std::string(200, '[')));
  REQUIRE(nul_deep.has_value());
  CHECK(nul_deep->state.last_good_generation == "older");
  REQUIRE(nul_deep->warnings.size() == 1);
  CHECK(nul_deep->warnings[0].ends_with(": a NUL byte"));
  // Torn behind an intact head: the older slot.
  std::string torn = encode_slot(9, encode_state(state_named("newest")));
  torn[40] ^= 1;
  auto damaged = load_with_newest(torn);
  REQUIRE(damaged.has_value());
  CHECK(damaged->state.last_good_generation == "older");
  // A newer slot format: refused, nothing is written over it.
  std::string newer = encode_slot(9, encode_state(state_named("newest")));
  newer[8] = 2;
  const std::uint32_t checksum =
      crc32c(std::string_view(newer).substr(kSlotHeaderSize),
             crc32c(std::string_view(newer).substr(0, kSlotChecksumOffset)));
  for (int i = 0; i < 4; ++i)
    newer[kSlotChecksumOffset + i] = static_cast<char>(checksum >> (8 * i));
  auto refused = load_with_newest(newer);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == ErrorCode::Unsupported);
}

TEST_CASE("slot files: a slot read in pieces is the file, with the checks of a whole read") {
  TempDir temp;
  const std::string dir = temp.path() + "/bootstate";
  SlotFiles files(dir);
  auto missing = files.open_reader(0);
  REQUIRE(missing.has_value());
  CHECK(*missing == nullptr);
  const std::string bytes = encode_slot(3, encode_state(many_migrations(30)));
  REQUIRE(files.write(0, bytes).has_value());
  auto reader = files.open_reader(0);
  REQUIRE(reader.has_value());
  REQUIRE(*reader != nullptr);
  std::string read;
  std::array<char, 1000> piece{};
  for (;;) {
    auto count = (*reader)->read(piece);
    REQUIRE(count.has_value());
    if (*count == 0) break;
    read.append(piece.data(), *count);
  }
  CHECK(read == bytes);
  // A symlink in a slot's place is refused, as read() refuses it.
  REQUIRE(::symlink((dir + "/state.0").c_str(), (dir + "/state.1").c_str()) == 0);
  auto linked = files.open_reader(1);
  REQUIRE_FALSE(linked.has_value());
  CHECK(linked.error().message == files.read(1).error().message);
}

// A second bootstate at the same moment: `status` reads the slots in pieces while a run commits
// into one of them, in place. Whatever piece the commit lands between, the load gives one
// commit's state with that commit's sequence, never a mix of two (the checksum covers exactly the
// bytes parsed). A warning about the slot being written is allowed: read_state reads again while
// a writer holds the lock (cli/state_view.cpp).
TEST_CASE("store: a slot rewritten while it is read in pieces is never read as a mix") {
  auto state_of = [](const std::string& generation, const std::string& message) {
    State state = many_migrations(30);
    state.last_good_generation = generation;
    state.migrations[29].message = message;
    return state;
  };
  // Padded to one size, as SlotFiles keeps a laid-out slot's size: rewritten in place.
  auto slot_of = [](std::uint64_t sequence, const State& state) {
    std::string payload = encode_state(state);
    return encode_slot(sequence, payload + std::string(40000 - payload.size(), ' '));
  };
  // Serves slot `racing`'s first `cut` bytes as they were when opened, the rest as `after`, and
  // leaves `after` there (the racing commit has landed when the read ends).
  class Racing : public FakeSlotStorage {
   public:
    int racing = 1;
    std::size_t cut = 0;
    std::string after;
    Expected<std::unique_ptr<Reader>> open_reader(int slot) override {
      if (slot != racing || after.empty()) return FakeSlotStorage::open_reader(slot);
      std::string mixed = this->slot(slot)->substr(0, cut) + after.substr(cut);
      this->slot(slot) = std::exchange(after, std::string());
      return std::unique_ptr<Reader>(
          std::make_unique<testing::PiecesReader>(std::move(mixed), 4096));
    }
  };
  const State nine = state_of("nine", "9");
  const State ten = state_of("ten", "10");
  const State eleven = state_of("eleven", "11");
  const State twelve = state_of("twelve", "12");
  // Slot 0 holds `first`, slot 1 `second`; slot 1 becomes `after` at byte `cut` of the read.
  // The load must give `before` (every byte read was the old one) or `after`, whole.
  auto race = [&](std::size_t cut, std::uint64_t first, std::uint64_t second, std::uint64_t after,
                  const State& before_state, const State& after_state) {
    Racing storage;
    storage.slot(0) = slot_of(first, first == 9 ? nine : ten);
    storage.slot(1) = slot_of(second, second == 9 ? nine : ten);
    storage.cut = cut;
    storage.after = slot_of(after, after_state);
    StateStore store(storage);
    const LoadResult result = load_ok(store);
    const std::uint64_t before = std::max(first, second);
    REQUIRE((result.sequence == before || result.sequence == after));
    CHECK(encode_state(result.state) ==
          encode_state(result.sequence == before ? before_state : after_state));
  };
  const std::size_t size = slot_of(9, nine).size();
  for (const std::size_t cut : {std::size_t{0}, std::size_t{40}, size / 2, size - 10}) {
    CAPTURE(cut);
    // The run's next commit goes to the older slot (1, sequence 9) while both are read.
    race(cut, 10, 9, 11, ten, eleven);
    // A run two commits ahead rewrites the newest slot (1, sequence 10) while it is parsed: the
    // old commit may come out only if every byte read was the old one (a cut in the padding).
    race(cut, 9, 10, 12, ten, twelve);
  }
}

}  // namespace bootstate

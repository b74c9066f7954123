// Power cuts between the page writes of one commit (issue #17 item 2). SlotFiles::write writes
// only the pages that differ from the slot's current bytes, one pwrite per run of them, and the
// disk may keep any subset of those runs when the power goes. Here every subset is tried, through
// real slot files: a fresh load must then yield exactly the last committed state (A) when any run
// was lost, and the new one (B) only when none was; and the next commit must work.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "core/slot_files.hpp"
#include "core/state_codec.hpp"
#include "core/store.hpp"
#include "tests/stage2/temp_dir.hpp"

namespace bootstate {
namespace {

using test::TempDir;

// Slot files whose next write loses the runs numbered in `lost` (0 = the first pwrite): as if
// the power went after the others reached the disk. The write then reports success, as a
// write whose cut came after it returned would; only a fresh load can tell.
class LossySlotFiles : public SlotFiles {
 public:
  LossySlotFiles(std::string directory, std::set<int> lost)
      : SlotFiles(std::move(directory)), lost_(std::move(lost)) {}
  int runs() const { return run_; }
  // From now on the runs are counted from 0 again and those in `lost` are lost: the commits
  // before this one in the same process were whole.
  void arm(std::set<int> lost) {
    lost_ = std::move(lost);
    run_ = 0;
  }

 protected:
  Expected<void> write_run(int fd, const std::string& path, std::size_t offset,
                           std::string_view bytes) override {
    if (lost_.count(run_++) != 0) return {};
    return SlotFiles::write_run(fd, path, offset, bytes);
  }

 private:
  std::set<int> lost_;
  int run_ = 0;
};

MigrationRecord record(int number, StepState step_state) {
  MigrationRecord migration;
  migration.id = fmt::format("m{:04}", number);
  migration.state = MigrationState::Applied;
  migration.definition_json = std::string(300, 'd');
  StepRecord step;
  step.id = "s";
  step.state = step_state;
  step.message = std::string(200, 'm');
  migration.steps = {step};
  return migration;
}

State state_at(int version) {
  State state;
  for (int number = 0; number < 60; ++number)
    state.migrations.push_back(record(number, StepState::Done));
  // Changes spread over the slot: records 5, 30 and 55, and the attempt after them.
  for (int changed : {5, 30, 55}) {
    state.migrations[static_cast<std::size_t>(changed)].steps[0].state =
        version == 0   ? StepState::Pending
        : version == 1 ? StepState::Running
                       : StepState::Done;
    state.migrations[static_cast<std::size_t>(changed)].steps[0].attempts =
        static_cast<std::uint32_t>(version);
  }
  Attempt attempt;
  attempt.number = static_cast<std::uint64_t>(version) + 1;
  attempt.generation = fmt::format("/nix/store/gen-{}", version);
  state.attempt = attempt;
  return state;
}

std::string load_payload(const std::string& directory) {
  SlotFiles files(directory);
  StateStore store(files);
  auto loaded = store.load();
  REQUIRE_MESSAGE(loaded.has_value(), (loaded ? std::string() : loaded.error().message));
  CHECK_FALSE(loaded->fresh);
  CHECK_FALSE(loaded->moved_aside);
  return encode_state(loaded->state);
}

// After a cut in B's commit (none of its page runs lost: `whole`) a fresh load yields B, else
// A; after the reboot the commit is made again, and sticks.
void check_cut_then_resumed(const std::string& directory, bool whole) {
  CHECK(load_payload(directory) == encode_state(state_at(whole ? 2 : 1)));
  SlotFiles files(directory);
  StateStore resumed(files);
  REQUIRE(resumed.load().has_value());
  REQUIRE(resumed.commit(state_at(2)).has_value());
  CHECK(load_payload(directory) == encode_state(state_at(2)));
}

}  // namespace

TEST_CASE("torn pages: any subset of a commit's page runs lost yields the last commit") {
  int runs = 0;
  {
    // How many runs B's commit writes over this history (the same for every trial).
    TempDir temp;
    SlotFiles files(temp.path());
    StateStore store(files);
    REQUIRE(store.commit(state_at(0)).has_value());
    REQUIRE(store.commit(state_at(1)).has_value());
    LossySlotFiles counting(temp.path(), {});
    StateStore next(counting);
    REQUIRE(next.commit(state_at(2)).has_value());
    runs = counting.runs();
  }
  INFO("page runs in B's commit: " << runs);
  REQUIRE(runs >= 3);  // the header's page and the separate records: a real mix to cut
  REQUIRE(runs <= 10);
  for (int mask = 0; mask < (1 << runs); ++mask) {
    CAPTURE(mask);
    TempDir temp;
    {
      SlotFiles files(temp.path());
      StateStore store(files);
      REQUIRE(store.commit(state_at(0)).has_value());
      REQUIRE(store.commit(state_at(1)).has_value());
    }
    std::set<int> lost;
    for (int run = 0; run < runs; ++run) {
      if ((mask & (1 << run)) != 0) lost.insert(run);
    }
    {
      LossySlotFiles lossy(temp.path(), lost);
      StateStore store(lossy);
      REQUIRE(store.commit(state_at(2)).has_value());
    }
    check_cut_then_resumed(temp.path(), lost.empty());
  }
}

// The same through the path that trusts this process's own last write of the slot
// (SlotStorage::write_changed): the store names the changed pages instead of reading the slot
// back. A cut between those pages must tear the slot exactly as it does for a compared write.
TEST_CASE("torn pages: a commit that trusted its own last write, cut anywhere, yields the last") {
  auto commit_three = [](LossySlotFiles& files, const std::set<int>& lost) {
    StateStore store(files);
    REQUIRE(store.load().has_value());
    REQUIRE(store.commit(state_at(0)).has_value());  // slot 0, then slot 1: each compared whole
    REQUIRE(store.commit(state_at(1)).has_value());
    files.arm(lost);
    REQUIRE(store.commit(state_at(2)).has_value());  // slot 0 again: the pages named
    CHECK(files.last_read_back_bytes() == 0);
  };
  int runs = 0;
  {
    TempDir temp;
    LossySlotFiles counting(temp.path(), {});
    commit_three(counting, {});
    runs = counting.runs();
  }
  INFO("page runs in B's commit: " << runs);
  REQUIRE(runs >= 3);
  REQUIRE(runs <= 10);
  for (int mask = 0; mask < (1 << runs); ++mask) {
    CAPTURE(mask);
    TempDir temp;
    std::set<int> lost;
    for (int run = 0; run < runs; ++run) {
      if ((mask & (1 << run)) != 0) lost.insert(run);
    }
    {
      LossySlotFiles lossy(temp.path(), {});
      commit_three(lossy, lost);
    }
    check_cut_then_resumed(temp.path(), lost.empty());
  }
}

}  // namespace bootstate

namespace bootstate {
namespace {

// Fails its first run with EIO, as a device that failed a write would.
class FailingOnceSlotFiles : public SlotFiles {
 public:
  using SlotFiles::SlotFiles;

 protected:
  Expected<void> write_run(int fd, const std::string& path, std::size_t offset,
                           std::string_view bytes) override {
    if (!failed_) {
      failed_ = true;
      return make_error(ErrorCode::Io, "write {}: Input/output error", path);
    }
    return SlotFiles::write_run(fd, path, offset, bytes);
  }

 private:
  bool failed_ = false;
};

}  // namespace

// What the page cache says after a failed write need not be on the disk (Linux marks pages
// clean when their writeback fails), so comparing with it could skip pages the disk lacks.
TEST_CASE("torn pages: after a failed write, the next write of that slot writes all of it") {
  TempDir temp;
  {
    SlotFiles files(temp.path());
    StateStore store(files);
    REQUIRE(store.commit(state_at(0)).has_value());
    REQUIRE(store.commit(state_at(1)).has_value());
  }
  FailingOnceSlotFiles files(temp.path());
  StateStore store(files);
  REQUIRE_FALSE(store.commit(state_at(2)).has_value());
  REQUIRE(store.commit(state_at(2)).has_value());  // the same slot again, all of it
  CHECK(files.last_write_bytes() == std::filesystem::file_size(temp.path() + "/" + "state.0"));
  REQUIRE(store.commit(state_at(1)).has_value());  // the other slot: pages again
  CHECK(files.last_write_bytes() < 3 * SlotFiles::kPage);
  CHECK(load_payload(temp.path()) == encode_state(state_at(1)));
}

}  // namespace bootstate

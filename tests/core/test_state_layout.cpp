// The payload's layout for commits that write what changed (core/state_layout.hpp, issue #17
// item 2): it decodes to the same State as encode_state's, unchanged records keep their byte
// offsets, and through real slot files a commit that changed one step writes a few pages.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "core/slot_files.hpp"
#include "core/state_codec.hpp"
#include "core/state_layout.hpp"
#include "core/store.hpp"
#include "tests/stage2/temp_dir.hpp"

namespace bootstate {
namespace {

using test::TempDir;

MigrationRecord applied(std::size_t number) {
  MigrationRecord record;
  record.id = fmt::format("migration-{:05}", number);
  record.state = MigrationState::Applied;
  record.digest = std::string(64, 'a' + static_cast<char>(number % 26));
  record.definition_json = fmt::format(
      R"({{"id":"migration-{:05}","steps":[{{"id":"s","phase":"post-activation","kind":"command","command":["/bin/true"]}}]}})",
      number);
  record.generation = "/nix/store/" + std::string(32, 'g') + "-nixos-system";
  record.attempt = number;
  StepRecord step;
  step.id = "s";
  step.state = StepState::Done;
  step.attempts = 1;
  step.exit_status = 0;
  step.message = "exit status 0";
  step.started_usec = 1'700'000'000'000'000 + static_cast<std::int64_t>(number);
  step.finished_usec = step.started_usec + 1000;
  step.boot_id = std::string(32, 'b');
  record.steps = {step};
  return record;
}

State state_with(std::size_t migrations) {
  State state;
  for (std::size_t number = 0; number < migrations; ++number) {
    state.migrations.push_back(applied(number));
  }
  Attempt attempt;
  attempt.number = 7;
  attempt.generation = "/nix/store/gen-7";
  attempt.boot_ids = {"boot-1"};
  state.attempt = attempt;
  state.last_good_generation = "/nix/store/gen-6";
  state.history.push_back(attempt);
  state.next_attempt_number = 8;
  return state;
}

// A layout with the frame it puts its bytes into, as the store keeps them.
struct Laying {
  PayloadLayout layout;
  SlotFrame frame{0};
};

std::string laid_out(Laying& laying, const State& state) {
  laying.frame.begin_version();
  const std::size_t end = laying.layout.encode(state, laying.frame, 0);
  return std::string(laying.frame.bytes().substr(0, end));
}

State decoded(const std::string& payload) {
  auto state = decode_state(payload);
  REQUIRE(state.has_value());
  return *state;
}

// `applied` settled records and one running migration after them, as a store mid-run holds.
State state_with_running(std::size_t applied_count) {
  State state = state_with(applied_count);
  MigrationRecord running = applied(applied_count);
  running.state = MigrationState::Running;
  state.migrations.push_back(running);
  return state;
}

// A new process loads exactly `state` from `files`.
void check_reread(SlotFiles& files, const State& state) {
  StateStore reread(files);
  auto loaded = reread.load();
  REQUIRE(loaded.has_value());
  CHECK(encode_state(loaded->state) == encode_state(state));
}

// Both codecs' bytes decode to the same State: compared through encode_state's canonical bytes.
void check_same_state(const std::string& payload, const State& expected) {
  CHECK(encode_state(decoded(payload)) == encode_state(expected));
}

}  // namespace

TEST_CASE("state layout: decodes to the state, empty, full and with odd strings") {
  Laying layout;
  check_same_state(laid_out(layout, State{}), State{});
  State state = state_with(30);
  state.migrations[3].message = std::string("a NUL \0 and \"quotes\" and \xff bytes", 34);
  state.store_reset_usec = 5;
  state.items.push_back(
      ItemRecord{"item", "check", "error", "m", {{"fix", "d"}}, "fix", "g", 1, 2});
  state.choices.push_back(ChoiceRecord{"item", "check", "fix", 3, "g"});
  const std::string payload = laid_out(layout, state);
  check_same_state(payload, state);
  // No member twice: `migrations` is written once, by the layout, not by the rest.
  CHECK(payload.find("\"migrations\"") == payload.rfind("\"migrations\""));
  CHECK(payload.find("\"attempt\": {") == payload.rfind("\"attempt\": {"));
}

TEST_CASE("state layout: unchanged records keep their offsets; a change moves nothing else") {
  Laying layout;
  State state = state_with(200);
  const std::string before = laid_out(layout, state);
  const std::size_t record_150 = before.find("\"migration-00150\"");

  // A step's record changes (longer message, another state word): it keeps its place.
  state.migrations[100].steps[0].state = StepState::Running;
  state.migrations[100].steps[0].message = "running since boot 2";
  state.attempt->boot_ids.push_back("boot-2");  // the attempt grows: it is after the records
  const std::string after = laid_out(layout, state);
  check_same_state(after, state);
  CHECK(after.find("\"migration-00150\"") == record_150);
  const std::size_t record_100 = before.find("\"migration-00100\"");
  const std::size_t record_101 = before.find("\"migration-00101\"");
  CHECK(before.compare(0, record_100, after, 0, record_100) == 0);
  CHECK(before.compare(record_101, record_150 - record_101, after, record_101,
                       record_150 - record_101) == 0);

  // A record appended extends the tail only.
  state.migrations.push_back(applied(200));
  const std::string appended = laid_out(layout, state);
  check_same_state(appended, state);
  const std::size_t end_of_records = after.find("\n],");
  CHECK(appended.compare(0, end_of_records, after, 0, end_of_records) == 0);

  // A forgotten record in the middle: the rest is still right (it moves, once).
  state.migrations.erase(state.migrations.begin() + 50);
  check_same_state(laid_out(layout, state), state);
}

TEST_CASE("state layout: a fresh layout places settled records where the last process did") {
  // Two processes: each starts with no layout. Records that did not change get the capacity
  // of their length alone, so the offsets of the old records agree.
  State state = state_with(100);
  Laying first;
  const std::string one = laid_out(first, state);
  state.attempt->boot_ids.push_back("boot-3");
  Laying second;
  const std::string two = laid_out(second, state);
  const std::size_t end_of_records = one.find("\n],");
  CHECK(one.compare(0, end_of_records, two, 0, end_of_records) == 0);
}

TEST_CASE("state layout: two records with one id (a damaged state) are both written") {
  Laying layout;
  State state = state_with(3);
  state.migrations.push_back(state.migrations[1]);
  state.migrations.back().message = "the second one";
  check_same_state(laid_out(layout, state), state);
  check_same_state(laid_out(layout, state), state);
}

TEST_CASE("slot files: changed pages are the ones that differ, adjacent ones joined") {
  const std::string held(5 * 4096, 'a');
  std::string bytes = held;
  CHECK(SlotFiles::changed_pages(held, bytes).empty());
  bytes[10] = 'b';
  bytes[2 * 4096] = 'b';
  bytes[3 * 4096 + 1] = 'b';
  bytes += "longer";
  auto runs = SlotFiles::changed_pages(held, bytes);
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].offset == 0);
  CHECK(runs[0].size == 4096);
  CHECK(runs[1].offset == 2 * 4096);  // pages 2 and 3
  CHECK(runs[1].size == 2 * 4096);
  CHECK(runs[2].offset == 5 * 4096);  // page 4 is the same; the bytes beyond the file's end
  CHECK(runs[2].size == 6);
  CHECK(SlotFiles::changed_pages("", "new").size() == 1);
}

// Issue #17 item 2: at 1,000 applied migrations every commit rewrote the whole slot (1.5 MB, and
// fdatasync'ed it). Now a commit that changed one step writes the header's page, that record's
// and the attempt's: a few pages.
TEST_CASE("slot files: at 1,000 applied migrations a commit of one step writes a few pages") {
  TempDir temp;
  SlotFiles files(temp.path() + "/bootstate");
  State state = state_with_running(1000);
  state.migrations.back().steps[0].state = StepState::Pending;
  {
    StateStore store(files);
    REQUIRE(store.commit(state).has_value());
    REQUIRE(store.commit(state).has_value());  // both slots in this layout
  }
  StateStore store(files);  // a new process, as the next phase
  REQUIRE(store.load().has_value());
  const std::size_t slot_size = std::filesystem::file_size(files.slot_path(0));
  CHECK(slot_size > 1'000'000);
  for (StepState next : {StepState::Running, StepState::Done}) {
    state.migrations.back().steps[0].state = next;
    state.attempt->boot_ids.push_back("boot-x");
    REQUIRE(store.commit(state).has_value());
    INFO("bytes written: " << files.last_write_bytes() << " of " << slot_size);
    CHECK(files.last_write_bytes() <= 4 * SlotFiles::kPage);
  }
  check_reread(files, state);
}

// Issue #17 item 2, the CPU side: once each slot was written by this process, a commit neither
// reads the slot back nor checksums the unchanged blocks (before: the whole 1.8 MB slot read and
// compared, and all of it checksummed, twice per step).
TEST_CASE("slot files: a commit reads back and checksums what changed, not the slot") {
  TempDir temp;
  SlotFiles files(temp.path() + "/bootstate");
  State state = state_with_running(1000);
  StateStore store(files);
  REQUIRE(store.load().has_value());
  for (int commit = 0; commit < 6; ++commit) {
    state.migrations.back().steps[0].message = fmt::format("commit {}", commit);
    state.attempt->boot_ids.push_back(fmt::format("boot-{}", commit));
    REQUIRE(store.commit(state).has_value());
    if (commit < 2) continue;  // each slot's first write in this process compares it whole
    INFO("commit " << commit);
    CHECK(files.last_read_back_bytes() == 0);
    CHECK(files.last_write_bytes() <= 4 * SlotFiles::kPage);
    CHECK(store.last_checksummed_bytes() <= 2 * SlotFrame::kChecksumBlock);
  }
  check_reread(files, state);
}

// Whatever a run of commits changes (records grow past their room, are forgotten, appended, the
// tail shrinks), each slot written with only the pages the frame names holds exactly the state
// committed, read back by a new process: its checksum, computed over the frame, verifies.
TEST_CASE("slot files: random commits leave each slot as a whole write would") {
  TempDir temp;
  SlotFiles files(temp.path() + "/bootstate");
  std::mt19937 random(2026);
  auto pick = [&](std::size_t bound) {
    return std::uniform_int_distribution<std::size_t>(0, bound)(random);
  };
  State state = state_with(300);
  StateStore store(files);
  REQUIRE(store.load().has_value());
  std::size_t next = 300;
  for (int commit = 0; commit < 120; ++commit) {
    switch (pick(4)) {
      case 0:
        state.migrations[pick(state.migrations.size() - 1)].message =
            std::string(pick(3000), 'm');  // grows past its room, or shrinks
        break;
      case 1:
        state.migrations.push_back(applied(next++));
        break;
      case 2:
        if (state.migrations.size() > 10) {
          state.migrations.erase(state.migrations.begin() +
                                 static_cast<std::ptrdiff_t>(pick(state.migrations.size() - 1)));
        }
        break;
      case 3:
        state.attempt->boot_ids.resize(pick(40), "boot");  // the tail after the records
        break;
      default:
        break;  // nothing changed: the commit writes the header's page
    }
    INFO("commit " << commit);
    REQUIRE(store.commit(state).has_value());
    const int slot = store.newest_slot();
    auto bytes = files.read(slot);
    REQUIRE(bytes.has_value());
    REQUIRE(bytes->has_value());
    auto frame = decode_slot_frame(**bytes);
    REQUIRE(frame.has_value());
    auto decoded_state = decode_state(frame->payload);
    REQUIRE(decoded_state.has_value());
    CHECK(encode_state(*decoded_state) == encode_state(state));
  }
  CHECK(files.last_read_back_bytes() == 0);  // the later commits took the trusted path
}

}  // namespace bootstate

// Power cuts during a commit and bit rot afterwards, at every byte: whatever happens to the slot
// being written (or to the other one), load() must yield exactly the old state A or exactly the
// new state B, never garbage, a crash, or a silent reset, and committing again must then work.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/state_codec.hpp"
#include "core/store.hpp"
#include "tests/support/fake_slot_storage.hpp"

namespace bootstate {
namespace {

using testing::FakeSlotStorage;
using testing::TearMode;

State make_state(std::string generation, StepState step_state, std::size_t padding) {
  State state;
  Attempt attempt;
  attempt.number = 3;
  attempt.generation = generation;
  attempt.boot_ids = {"boot-1", "boot-2"};
  state.attempt = attempt;
  MigrationRecord migration;
  migration.id = "grow-root";
  migration.state = MigrationState::Running;
  StepRecord step;
  step.id = "grow";
  step.state = step_state;
  step.attempts = 1;
  step.message = std::string(padding, 'p');
  migration.steps = {step};
  state.migrations = {migration};
  state.last_good_generation = std::move(generation);
  return state;
}

// The store's history before B is committed, and what B's commit writes.
struct Scenario {
  const char* name;
  FakeSlotStorage before_b;  // A committed (and maybe an older Z before it)
  std::string payload_a;
  std::string payload_b;
  State state_b;
  int b_slot = 0;
  std::string b_bytes;      // the complete slot B's commit writes
  FakeSlotStorage after_b;  // B committed successfully
};

Scenario make_scenario(const char* name, std::vector<State> before, const State& b) {
  Scenario scenario{name, {}, {}, {}, b, 0, {}, {}};
  {
    StateStore store(scenario.before_b);
    for (const State& state : before) REQUIRE(store.commit(state).has_value());
  }
  scenario.payload_a = encode_state(before.back());
  scenario.payload_b = encode_state(b);
  scenario.after_b = scenario.before_b;
  StateStore store(scenario.after_b);
  REQUIRE(store.commit(b).has_value());
  scenario.b_slot = scenario.after_b.written_slots().back();
  scenario.b_bytes = *scenario.after_b.slot(scenario.b_slot);
  return scenario;
}

std::vector<Scenario> scenarios() {
  const State z_long = make_state("/nix/store/z", StepState::Pending, 600);
  const State z_short = make_state("/nix/store/z", StepState::Pending, 0);
  const State a = make_state("/nix/store/a", StepState::Running, 40);
  const State b = make_state("/nix/store/b", StepState::Done, 80);
  std::vector<Scenario> all;
  all.push_back(make_scenario("B goes to a slot that did not exist", {a}, b));
  all.push_back(make_scenario("B overwrites a longer old slot", {z_long, a}, b));
  all.push_back(make_scenario("B overwrites a shorter old slot", {z_short, a}, b));
  return all;
}

// Loads from `storage` and says which state came back: 'A', 'B', or fails the test.
char load_outcome(FakeSlotStorage& storage, const Scenario& scenario) {
  StateStore store(storage);
  auto result = store.load();
  REQUIRE_MESSAGE(result.has_value(), (result ? std::string() : result.error().message));
  CHECK_FALSE(result->fresh);
  CHECK_FALSE(result->moved_aside);
  const std::string payload = encode_state(result->state);
  if (payload == scenario.payload_a) return 'A';
  if (payload == scenario.payload_b) return 'B';
  FAIL("load() returned a state that is neither A nor B");
  return '?';
}

}  // namespace

TEST_CASE("torn commit: every prefix of the new slot yields A or B, then B commits") {
  for (Scenario& scenario : scenarios()) {
    for (TearMode mode : {TearMode::Truncate, TearMode::OverOld}) {
      int a_count = 0;
      int b_count = 0;
      for (std::size_t keep = 0; keep <= scenario.b_bytes.size(); ++keep) {
        const std::string name = scenario.name;
        CAPTURE(name);
        CAPTURE(static_cast<int>(mode));
        CAPTURE(keep);
        FakeSlotStorage storage = scenario.before_b;
        storage.tear_write(storage.writes() + 1, keep, mode);
        {
          StateStore store(storage);
          REQUIRE_FALSE(store.commit(scenario.state_b).has_value());  // the power cut
        }
        const char outcome = load_outcome(storage, scenario);
        (outcome == 'A' ? a_count : b_count) += 1;
        // Only the complete slot may read as B.
        if (outcome == 'B') CHECK(*storage.slot(scenario.b_slot) == scenario.b_bytes);

        // Resume after the reboot: the commit is redone and sticks.
        StateStore resumed(storage);
        REQUIRE(resumed.load().has_value());
        REQUIRE(resumed.commit(scenario.state_b).has_value());
        CHECK(load_outcome(storage, scenario) == 'B');
      }
      CHECK(a_count >= static_cast<int>(scenario.b_bytes.size()));
      MESSAGE(std::string(scenario.name)
              << ", mode " << static_cast<int>(mode) << ": " << a_count << " x A, " << b_count
              << " x B over " << scenario.b_bytes.size() + 1 << " cut points");
    }
  }
}

TEST_CASE("bit rot: a flipped bit anywhere in the new slot yields A, in the old slot yields B") {
  for (Scenario& scenario : scenarios()) {
    const std::string name = scenario.name;
    CAPTURE(name);
    const int a_slot = 1 - scenario.b_slot;
    const std::string a_bytes = *scenario.after_b.slot(a_slot);
    for (std::size_t byte = 0; byte < scenario.b_bytes.size(); ++byte) {
      CAPTURE(byte);
      FakeSlotStorage storage = scenario.after_b;
      (*storage.slot(scenario.b_slot))[byte] ^= static_cast<char>(1U << (byte % 8));
      CHECK(load_outcome(storage, scenario) == 'A');
    }
    for (std::size_t byte = 0; byte < a_bytes.size(); ++byte) {
      CAPTURE(byte);
      FakeSlotStorage storage = scenario.after_b;
      (*storage.slot(a_slot))[byte] ^= static_cast<char>(1U << (byte % 8));
      CHECK(load_outcome(storage, scenario) == 'B');
    }
  }
}

TEST_CASE("bit rot: the store then overwrites the damaged slot and stays consistent") {
  for (Scenario& scenario : scenarios()) {
    const std::string name = scenario.name;
    CAPTURE(name);
    FakeSlotStorage storage = scenario.after_b;
    (*storage.slot(scenario.b_slot))[scenario.b_bytes.size() / 2] ^= 0x10;
    StateStore store(storage);
    auto loaded = store.load();
    REQUIRE(loaded.has_value());
    CHECK(loaded->warnings.size() == 1);
    // A is current again; the next commit must replace the damaged slot, not A's.
    REQUIRE(store.commit(scenario.state_b).has_value());
    CHECK(storage.written_slots().back() == scenario.b_slot);
    CHECK(load_outcome(storage, scenario) == 'B');
  }
}

}  // namespace bootstate

// The transition tables are the only way a state changes: every row moves exactly as written,
// every (state, event) pair that is not a row is refused as a bug, naming the pair.
#include <doctest/doctest.h>

#include <set>
#include <utility>

#include "core/transitions.hpp"

using namespace bootstate;

namespace {

// Every row of `rows` moves as written, the table has no pair twice, and every other pair of
// the `states` × `events` square is an error that names the state and the event.
template <typename State, typename Event, typename Row>
void walk(std::span<const Row> rows, int states, int events, std::string_view what) {
  std::set<std::pair<int, int>> listed;
  for (const Row& row : rows) {
    CAPTURE(to_string(row.from));
    CAPTURE(to_string(row.event));
    auto moved = next_state(row.from, row.event);
    REQUIRE(moved.has_value());
    CHECK(*moved == row.to);
    CHECK(listed.emplace(static_cast<int>(row.from), static_cast<int>(row.event)).second);
  }
  int refused = 0;
  for (int s = 0; s < states; ++s) {
    for (int e = 0; e < events; ++e) {
      if (listed.count({s, e}) > 0) continue;
      const auto state = static_cast<State>(s);
      const auto event = static_cast<Event>(e);
      auto moved = next_state(state, event);
      REQUIRE(!moved.has_value());
      CHECK(moved.error().message == fmt::format("bug: {} cannot go from {} on {}", what,
                                                 to_string(state), to_string(event)));
      ++refused;
    }
  }
  CHECK(static_cast<int>(listed.size()) + refused == states * events);
}

}  // namespace

TEST_CASE("transition tables: every row moves as written, every other pair is a bug") {
  walk<StepState, StepEvent>(step_transitions(), 5, 7, "a step");
  walk<MigrationState, MigrationEvent>(migration_transitions(), 6, 7, "a migration");
  walk<AttemptState, AttemptEvent>(attempt_transitions(), 4, 4, "an attempt");
  // The event names are the table's vocabulary in messages: one per event, none empty.
  for (int e = 0; e < 7; ++e) CHECK(!to_string(static_cast<StepEvent>(e)).empty());
  CHECK(to_string(StepEvent::CheckNotApplied) == "check-not-applied");
  CHECK(to_string(StepEvent::Reset) == "reset");
}

TEST_CASE("transition tables: a check that says not applied makes an interrupted step pending") {
  CHECK(*next_state(StepState::Running, StepEvent::CheckNotApplied) == StepState::Pending);
  CHECK(!next_state(StepState::Done, StepEvent::CheckNotApplied));
}

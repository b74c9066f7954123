// Items and choices of generations the machine has left behind are dropped when an attempt
// completes (core/choices.hpp forget_items_left_behind); the generation just fallen back from
// keeps them, so the operator can still choose or retry.
#include <doctest/doctest.h>

#include "core/choices.hpp"

using namespace bootstate;

namespace {

ItemRecord item_of(const std::string& generation, const std::string& id) {
  ItemRecord item;
  item.id = id;
  item.check = "c";
  item.severity = "error";
  item.generation = generation;
  return item;
}

Attempt attempt_of(const std::string& generation, AttemptState state) {
  Attempt attempt;
  attempt.generation = generation;
  attempt.state = state;
  return attempt;
}

State with_items() {
  State state;
  for (const char* generation : {"/g1", "/g2", "/g3"}) {
    state.items.push_back(item_of(generation, std::string("i") + generation));
    state.choices.push_back(ChoiceRecord{std::string("i") + generation, "c", "r", 0, generation});
  }
  return state;
}

}  // namespace

TEST_CASE("a completed attempt keeps its own items and those of the generation it fell back from") {
  State state = with_items();
  state.history.push_back(attempt_of("/g2", AttemptState::Failed));
  state.attempt = attempt_of("/g1", AttemptState::Complete);
  CHECK(forget_items_left_behind(state, "/g1"));
  REQUIRE(state.items.size() == 2);
  CHECK(state.items[0].generation == "/g1");
  CHECK(state.items[1].generation == "/g2");
  CHECK(state.choices.size() == 2);
  CHECK_FALSE(forget_items_left_behind(state, "/g1"));  // nothing more to drop
}

TEST_CASE("after a completed attempt before it, only the completed generation's items stay") {
  State state = with_items();
  state.history.push_back(attempt_of("/g2", AttemptState::Complete));
  state.attempt = attempt_of("/g3", AttemptState::Complete);
  CHECK(forget_items_left_behind(state, "/g3"));
  REQUIRE(state.items.size() == 1);
  CHECK(state.items[0].generation == "/g3");
  REQUIRE(state.choices.size() == 1);
  CHECK(state.choices[0].generation == "/g3");
}

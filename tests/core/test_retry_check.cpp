// `bootstate retry` of a check, and retry after a fallback (core/operator.hpp): the ways out
// of a generation stopped by a check or a step, which before were none for a check.
#include <doctest/doctest.h>

#include <string>

#include "core/operator.hpp"
#include "core/plan.hpp"

using namespace bootstate;

namespace {

const std::string kGen = "/nix/store/g";

Plan plan_with_check() {
  auto plan = parse_plan(
      R"({"schema":1,"generation":"/nix/store/g","migrations":[],"checks":[{"id":"pg",)"
      R"("description":"d","phase":"post-activation","command":["/bin/check"],"resolutions":[]}]})",
      "plan.json");
  REQUIRE_MESSAGE(plan.has_value(), plan.error().message);
  return *plan;
}

Attempt attempt_of(const std::string& generation, AttemptState state, std::uint64_t number) {
  Attempt attempt;
  attempt.number = number;
  attempt.generation = generation;
  attempt.state = state;
  return attempt;
}

}  // namespace

TEST_CASE("retry CHECK reopens the failed attempt of the check's generation") {
  State state;
  state.attempt = attempt_of(kGen, AttemptState::Failed, 2);
  state.attempt->reason = "check \"pg\" reports error \"check-failed\": exit status 3";
  auto retried = retry_migration(state, plan_with_check(), "pg");
  REQUIRE_MESSAGE(retried.has_value(), retried.error().message);
  CHECK(retried->attempt->state == AttemptState::InProgress);
  CHECK(retried->attempt->reason.empty());
}

TEST_CASE("retry CHECK is refused when there is nothing to retry") {
  State in_progress;
  in_progress.attempt = attempt_of(kGen, AttemptState::InProgress, 2);
  auto refused = retry_migration(in_progress, plan_with_check(), "pg");
  REQUIRE(!refused);
  CHECK(refused.error().message.find("runs again at its next boot") != std::string::npos);

  State complete;
  complete.attempt = attempt_of(kGen, AttemptState::Complete, 2);
  CHECK(!retry_migration(complete, plan_with_check(), "pg"));
  CHECK(!retry_migration(complete, plan_with_check(), "nope"));
}

TEST_CASE("after a fallback, retry changes nothing: the generation's next boot starts anew") {
  State state;
  state.history.push_back(attempt_of(kGen, AttemptState::Failed, 2));
  state.attempt = attempt_of("/nix/store/last-good", AttemptState::Complete, 3);
  CHECK(fell_back_from(state, kGen));
  auto retried = retry_migration(state, plan_with_check(), "pg");
  REQUIRE_MESSAGE(retried.has_value(), retried.error().message);
  CHECK(retried->attempt->number == 3);
  // Not for an id the plan does not have, and not for a generation that never failed.
  CHECK(!retry_migration(state, plan_with_check(), "nope"));
  state.history.back().state = AttemptState::Complete;
  CHECK_FALSE(fell_back_from(state, kGen));
}

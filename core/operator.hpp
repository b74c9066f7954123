// Operator decisions (`bootstate accept|decline|retry ID`) as pure state changes. Each returns
// the state to commit, or InvalidInput naming why the decision does not apply (exit 2,
// nothing changed).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

// An optional migration may run (a declined recommended one too: accepting undoes the decline).
Expected<State> accept_migration(State state, const Plan& plan, std::string_view id);

// A recommended/optional migration of the plan that has not started will not run. A stale
// migration that cannot be undone keeps its effect and stops blocking.
Expected<State> decline_migration(State state, const Plan& plan, std::string_view id);

// A failed migration (or a failed undo) runs again from its failed step; a failed attempt of
// the same plan is reopened. `id` may also name a check of the plan (retry_check). After a
// fallback from the plan's generation (fell_back_from), the state is returned unchanged.
Expected<State> retry_migration(State state, const Plan& plan, std::string_view id);

// `generation`'s last attempt failed and the machine has fallen back since (the current attempt
// is another generation's): its next boot starts a new attempt. `retry ID --plan GENERATION`
// then changes no state; the caller gives the generation's boot entries their tries back.
bool fell_back_from(const State& state, std::string_view generation);

// `bootstate retry CHECK`: the failed attempt of the plan's generation is reopened, so its next
// boot runs the checks again: the way out of a check that failed (a `check-failed` item) or
// reported an error the operator has since fixed by hand. InvalidInput when the plan has no such
// check or its generation has no failed attempt.
Expected<State> retry_check(State state, const Plan& plan, std::string_view id);

// `bootstate cancel`: the attempt in progress is abandoned, "cancelled by the operator". It
// runs nothing more; what it applied is undone by the last good generation's next boot (at
// once in a live switch: the caller runs the switch's post-activation phase, which undoes).
Expected<State> cancel_attempt(State state, std::int64_t now_usec);

}  // namespace bootstate

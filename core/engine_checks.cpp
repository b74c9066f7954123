// checks_ran(): what the items of a phase's checks mean for the attempt. An error item without
// a choice fails it like a failed required step (the phase fails, the fallback is arranged);
// warnings and recommendations are recorded and the boot goes on.
#include <algorithm>

#include "core/choices.hpp"
#include "core/engine_internal.hpp"

namespace bootstate {

std::string choose_command(std::string_view item, std::string_view resolution,
                           std::string_view plan_generation) {
  if (plan_generation.empty()) return fmt::format("bootstate choose {} {}", item, resolution);
  return fmt::format("bootstate choose --plan {} {} {}", plan_generation, item, resolution);
}

std::string blocker_text(const ItemRecord& item, std::string_view plan_generation) {
  std::string text = fmt::format("check \"{}\" reports {} \"{}\": {}", item.check, item.severity,
                                 item.id, item.message);
  if (item.resolutions.empty()) return text + " (it offers no resolution)";
  text += "; choose a resolution:";
  for (std::size_t i = 0; i < item.resolutions.size(); ++i) {
    text += fmt::format("{} `{}`", i == 0 ? "" : " or",
                        choose_command(item.id, item.resolutions[i].id, plan_generation));
  }
  return text;
}

Expected<ChecksRan> checks_ran(const State& original, const Plan& plan,
                               const std::vector<std::string>& checks,
                               const std::vector<CheckItem>& items, const BootFacts& facts) {
  ChecksRan result{original, false, {}};
  State& state = result.state;
  const std::string& generation = facts.target_generation();
  const std::uint64_t attempt = state.attempt ? state.attempt->number : 0;
  const std::vector<ItemRecord> fresh =
      item_records(items, plan, generation, attempt, facts.now_usec);
  result.changed = record_items(state, checks, fresh, generation);
  for (const ItemView& view : item_views(fresh, state)) {
    if (view.blocker) {
      result.blockers.push_back(blocker_text(view.item));
    } else if (view.state == ItemState::Resolved && view.item.severity == "error") {
      // Its resolution ran, yet the check still finds the problem: the resolution did not
      // resolve it, and going on would boot into what the check was meant to stop.
      result.blockers.push_back(fmt::format(
          "check \"{}\" still reports error \"{}\" after its chosen resolution \"{}\" was "
          "applied: {}",
          view.item.check, view.item.id, view.chosen, view.item.message));
    }
  }
  if (!result.blockers.empty() && state.attempt &&
      state.attempt->state == AttemptState::InProgress) {
    std::string reason = result.blockers.front();
    if (result.blockers.size() > 1) {
      reason +=
          fmt::format(" (and {} more item(s): `bootstate status`)", result.blockers.size() - 1);
    }
    BOOTSTATE_TRY(engine_detail::fail_attempt(state, reason, facts.now_usec));
    result.changed = true;
  }
  return result;
}

}  // namespace bootstate

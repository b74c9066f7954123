// finish(): how a phase run ends — done, failed with a fallback arranged (semantics 4), a
// reboot to continue with the counter re-armed after progress (semantics 2, 6), or the attempt
// complete and the entry blessed (semantics 7).
#include <algorithm>

#include "core/choices.hpp"
#include "core/engine_internal.hpp"
#include "core/transitions.hpp"

namespace bootstate {

using namespace engine_detail;

namespace {

// Where a failed boot goes next: the previous generation, through the boot loader.
void arrange_fallback(PhaseEnd& end, const State& state, const EngineInput& input) {
  if (input.facts.booted_generation == state.last_good_generation) {
    end.message +=
        "; this is already the last good generation, so there is nothing to fall "
        "back to";
    return;
  }
  if (input.entry.counting == BootCounting::Active) {
    end.boot_actions.push_back(BootActionKind::MarkBad);
  } else if (!state.last_good_generation.empty()) {
    end.boot_actions.push_back(BootActionKind::OneShotToLastGood);
  } else {
    // Say why counting could not be used: that is what an administrator has to fix.
    end.message += "; no last good generation is known to fall back to";
    if (!input.entry.why.empty())
      end.message += " and boot counting is unusable: " + input.entry.why;
  }
}

// `bootstate retry ID` only takes a failed migration (of the plan, or a stale one whose undo
// failed in this attempt): an attempt failed by a changed definition or the loop breaker has
// none, and retry refuses them.
bool retry_helps(const State& state) {
  return std::any_of(
      state.migrations.begin(), state.migrations.end(), [&state](const MigrationRecord& record) {
        return record.state == MigrationState::Failed && record.attempt == state.attempt->number;
      });
}

bool stale_blocked(const State& state, const EngineInput& input, std::string& message) {
  for (const StaleView& view : stale_view(state, *input.plan, *input.recorded)) {
    if (view.kept || view.blocker.empty()) continue;
    message =
        fmt::format("stale migration \"{}\" cannot be undone: {}", view.record->id, view.blocker);
    return true;
  }
  return false;
}

// How to go back after a live switch that did not work: switch-to-configuration has already
// made the generation current, and only the operator can switch back.
std::string rollback_hint(const EngineInput& input) {
  return fmt::format(
      "nothing reboots: `nixos-rebuild switch --rollback` (or switching to {}) goes back to the "
      "booted generation",
      input.facts.booted_generation.empty() ? "the booted generation"
                                            : input.facts.booted_generation);
}

// What became of the migrations a failed live switch undoes, in words.
std::string undo_summary(const State& state, const EngineInput& input) {
  std::string summary;
  auto add = [&summary](std::string part) { summary += (summary.empty() ? "" : "; ") + part; };
  for (const StaleView& view : failed_switch_view(state, *input.plan, input.facts)) {
    const std::string& id = view.record->id;
    if (!view.blocker.empty()) {
      add(fmt::format("migration \"{}\" cannot be undone: {}", id, view.blocker));
    } else if (view.kept) {
      add(fmt::format("migration \"{}\" is kept (its effect stays)", id));
    } else if (view.pending) {
      add(fmt::format("the undo of migration \"{}\" waits for another phase", id));
    } else {
      add(fmt::format("migration \"{}\" was undone", id));
    }
  }
  return summary;
}

// A live switch (docs/DESIGN.md "A live switch"): the generation is not booted, so there is no
// boot counting, no fallback and never a reboot; the attempt ends complete or failed, or stays
// open with work for the next boot of the generation (exit 4).
Expected<PhaseEnd> finish_switch(const State& original, const EngineInput& input) {
  PhaseEnd end;
  end.state = original;
  State& state = end.state;
  const std::string& target = input.facts.current_generation;
  if (switch_idle(state, input)) {
    end.message = fmt::format("nothing to do for the switch to {}", target);
    return end;
  }
  Attempt& attempt = *state.attempt;
  if (attempt_cancelled(state)) {
    // Cancelled in a live switch: what it applied is undone at once (next() did it); the
    // running configuration stays the operator's to switch back.
    std::string undone = undo_summary(state, input);
    const bool all_undone = std::all_of(
        state.migrations.begin(), state.migrations.end(), [&](const MigrationRecord& record) {
          return record.attempt != attempt.number || !record.touched() ||
                 record.state == MigrationState::Undone;
        });
    if (!all_undone) end.exit = PhaseExit::Failed;
    end.message =
        fmt::format("attempt {} of the switch to {} is {}{}{}; {}", attempt.number, target,
                    attempt.reason, undone.empty() ? "" : "; ", undone, rollback_hint(input));
    return end;
  }
  if (attempt.state == AttemptState::Failed) {
    end.exit = PhaseExit::Failed;
    std::string undone = undo_summary(state, input);
    end.message = fmt::format("the switch to {} failed: {}{}{}; {}", target, attempt.reason,
                              undone.empty() ? "" : "; ", undone, rollback_hint(input));
    return end;
  }
  if (stale_blocked(state, input, end.message)) {
    end.exit = PhaseExit::Failed;
    end.message += "; " + rollback_hint(input);
    return end;
  }
  if (work_remains(state, *input.plan, *input.recorded)) {
    end.exit = PhaseExit::RebootRequired;
    end.message = fmt::format(
        "{}: reboot into {} to go on (bootstate never reboots during a switch)",
        reboot_pending(state, input) ? "a step asked for a reboot before the next one"
                                     : "work remains for phases that run before this one",
        target);
    return end;
  }
  if (attempt.state != AttemptState::InProgress) return end;
  if (auto held = required_work_held(plan_view(*input.plan, state))) {
    end.exit = PhaseExit::Failed;
    end.message = held->reason + "; the attempt stays open until then";
    return end;
  }
  BOOTSTATE_TRY(advance(attempt.state, AttemptEvent::Complete));
  attempt.finished_usec = input.facts.now_usec;
  attempt.reason.clear();
  forget_items_left_behind(state, attempt.generation);
  end.changed = true;
  end.attempt_completed = true;
  // Not the last good generation yet: that needs a boot of it (finish blesses its first one).
  end.message = fmt::format(
      "attempt complete (live switch to {}); it becomes the last good generation once it boots",
      target);
  return end;
}

}  // namespace

Expected<PhaseEnd> finish(const State& original, const EngineInput& input) {
  if (input.facts.switch_attempt()) return finish_switch(original, input);
  PhaseEnd end;
  end.state = original;
  State& state = end.state;
  const bool counting = input.entry.counting == BootCounting::Active;

  if (attempt_cancelled(state)) {
    // The generation of a cancelled attempt is not blessed; the last good one undoes it.
    end.exit = PhaseExit::Failed;
    end.message =
        fmt::format("attempt {} was {}: boot the last good generation{} to undo what it did",
                    state.attempt->number, state.attempt->reason,
                    state.last_good_generation.empty() ? "" : " " + state.last_good_generation);
    arrange_fallback(end, state, input);
    return end;
  }
  if (state.attempt && state.attempt->state == AttemptState::Failed) {
    end.exit = PhaseExit::Failed;
    end.message = state.attempt->reason;
    const auto& boots = state.attempt->boot_ids;
    if (boots.empty() || boots.back() != input.facts.boot_id) {
      end.message = fmt::format("attempt {} failed in an earlier boot: {}{}", state.attempt->number,
                                state.attempt->reason,
                                retry_helps(state) ? " (`bootstate retry ID` runs it again)" : "");
    }
    arrange_fallback(end, state, input);
    return end;
  }
  if (stale_blocked(state, input, end.message)) {
    end.exit = PhaseExit::Failed;  // no fallback: undoing is what the fallback needs
    return end;
  }

  const bool remaining = work_remains(state, *input.plan, *input.recorded);
  if (remaining) {
    // Semantics 6: a boot that completed a step gets its tries back at once, in whichever
    // phase — a crash later in this boot must not count against the progress it made.
    if (counting && progress_this_boot(state, input.facts)) {
      end.boot_actions.push_back(BootActionKind::Rearm);
    }
    bool reboot_now = reboot_pending(state, input);
    if (reboot_now || input.phase == Phase::PostActivation) {
      end.exit = PhaseExit::RebootRequired;
      end.reboot_helps = true;
      end.message = reboot_now ? "a step asked for a reboot before the next one"
                               : "work remains for phases that run before this one: reboot";
    }
    return end;
  }

  // Nothing left. The attempt completes only once the whole boot got through: in
  // post-activation (an initrd phase cannot know that stage 2 will come up).
  if (input.phase != Phase::PostActivation || !state.attempt) return end;
  Attempt& attempt = *state.attempt;
  if (attempt.state == AttemptState::InProgress) {
    // Required work held for the operator after a store loss: nothing is wrong with the
    // generation (no fallback), but it is not blessed before that work ran.
    if (auto held = required_work_held(plan_view(*input.plan, state))) {
      end.exit = PhaseExit::Failed;
      end.message = held->reason + "; the attempt stays open until then";
      return end;
    }
    auto completed = next_state(attempt.state, AttemptEvent::Complete);
    if (!completed) return completed.error();
    attempt.state = *completed;
    attempt.finished_usec = input.facts.now_usec;
    attempt.reason.clear();
    forget_items_left_behind(state, attempt.generation);
    state.last_good_generation = input.facts.booted_generation;
    state.last_good_entry = input.entry.id;
    end.changed = true;
    end.attempt_completed = true;
    end.message = "attempt complete";
    // Semantics 6: a re-armed entry is no longer the file LoaderBootCountPath names, so
    // systemd-bless-boot may not find it; bootstate blesses it itself.
    if (counting) end.boot_actions.push_back(BootActionKind::MarkGood);
  } else if (attempt.state == AttemptState::Complete &&
             attempt.generation == input.facts.booted_generation &&
             state.last_good_generation != attempt.generation) {
    // Completed in a live switch, and now booted through post-activation for the first time:
    // only a boot proves it boots, so only now is it the generation to fall back to.
    state.last_good_generation = input.facts.booted_generation;
    state.last_good_entry = input.entry.id;
    end.changed = true;
    end.message = "first boot after its live switch: the generation is good";
    if (counting) end.boot_actions.push_back(BootActionKind::MarkGood);
  }
  return end;
}

}  // namespace bootstate

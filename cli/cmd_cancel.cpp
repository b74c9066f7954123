// `bootstate cancel`: the operator abandons the attempt in progress (issue #16 item 7).
//
// The decision is one commit under the store lock, like accept/decline/retry. Then its effect:
// - in a live switch (the attempt is the current system's, not the booted generation's) what the
//   attempt applied is undone at once, by the post-activation phase of the current system,
//   which the engine runs as the undo of a cancelled switch;
// - after a boot, the last good generation undoes it when it boots, so bootstate arranges that
//   it boots next: the booted entry marked bad with boot counting, else a one-shot entry.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/decision_store.hpp"
#include "core/operator.hpp"

namespace bootstate::cli {
namespace {

// The phase a live switch runs, for the current system's plan (the unit's argv).
int undo_switch_now(const Machine& machine) {
  Options run = machine.options();
  run.command = Command::Run;
  run.phase = Phase::PostActivation;
  run.plan = "/run/current-system/bootstate/plan.json";
  run.argument.clear();
  return run_command(Machine(run));
}

// The next boot starts the last good generation, which undoes what the attempt did.
int arrange_fallback_now(const Machine& machine, const std::string& esp, const BootFacts& facts,
                         const State& state) {
  auto opened = operator_boot_loader(machine, esp, facts);
  if (!opened) return report_error(opened.error());
  BootLoader& loader = *opened->loader;
  const std::string& last_good = state.last_good_generation;
  auto entry = loader.booted_entry();
  Expected<void> arranged = Error{ErrorCode::Unsupported, ""};
  std::string how;
  if (entry && entry->counting == BootCounting::Active) {
    arranged = loader.mark_bad();
    how = fmt::format("boot entry {} is marked bad, so the boot loader skips it", entry->id);
  } else if (!state.last_good_entry.empty()) {
    arranged = loader.set_one_shot(state.last_good_entry);
    how = fmt::format("the next boot starts entry {} once", state.last_good_entry);
  } else {
    arranged = make_error(ErrorCode::Unsupported, "no last good entry is known{}",
                          entry ? "" : ": " + entry.error().message);
  }
  if (!arranged) {
    std::fprintf(stderr,
                 "bootstate: the attempt is cancelled, but the fallback could not be arranged "
                 "(%s): boot %s from the boot menu to undo what it did\n",
                 arranged.error().message.c_str(),
                 last_good.empty() ? "an older generation" : last_good.c_str());
    return kExitFailed;
  }
  std::printf("%s; rebooting into %s undoes what the attempt did\n", how.c_str(),
              last_good.empty() ? "it" : last_good.c_str());
  return kExitOk;
}

}  // namespace

int cancel_command(const Machine& machine) {
  auto facts = machine.boot_facts();
  if (!facts) return report_error(facts.error());
  auto esp = machine.esp();
  if (!esp) return report_error(esp.error());
  State cancelled;
  {
    auto store = DecisionStore::open(machine, *esp);
    if (!store) return report_error(store.error());
    auto decided = cancel_attempt(store->state, facts->now_usec);
    if (!decided) return report_error(decided.error());
    if (auto committed = store->commit(*decided); !committed) {
      return report_error(committed.error());
    }
    cancelled = std::move(*decided);
  }  // the lock is released: the switch's undo below takes it as every run does
  const Attempt& attempt = *cancelled.attempt;
  std::printf("attempt %llu (%s) cancelled by the operator\n",
              static_cast<unsigned long long>(attempt.number), attempt.generation.c_str());
  if (facts->switch_attempt() && attempt.generation == facts->current_generation) {
    const int undone = undo_switch_now(machine);
    if (undone == kExitOk) {
      std::printf(
          "what the switch applied is undone; the running configuration is still %s's: "
          "`nixos-rebuild switch --rollback` (or switching to %s) goes back to the booted "
          "generation\n",
          attempt.generation.c_str(), facts->booted_generation.c_str());
    }
    return undone;
  }
  if (attempt.generation == facts->booted_generation) {
    return arrange_fallback_now(machine, *esp, *facts, cancelled);
  }
  std::printf("booting %s undoes what it did\n", cancelled.last_good_generation.empty()
                                                     ? "the last good generation"
                                                     : cancelled.last_good_generation.c_str());
  return kExitOk;
}

}  // namespace bootstate::cli

// `bootstate choose ITEM RESOLUTION` and `choose ITEM --clear`: the operator's answer to a
// check's item, one commit (docs/DESIGN.md "Checks and resolutions").
//
// Like accept/decline (cmd_decide.cpp), load, decide and commit happen under the store lock, so
// a choice made while `run` advances a phase applies to the state that run leaves. The checks
// that may have to run to find the item run before the lock is taken: a check may take
// minutes, and a boot must not wait for it.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/decision_store.hpp"
#include "cli/executors.hpp"
#include "cli/state_view.hpp"
#include "core/choices.hpp"

namespace bootstate::cli {
namespace {

// The plan of the item's generation, to validate the resolution against: the given one when it
// has the item's source (check, or migration of a step), else the generation's own plan if it can
// still be read (a fallen-back machine boots another generation than the item's), else none (the
// recorded item is all there is).
std::optional<Plan> plan_for(const Machine& machine, const Plan& given, const ItemRecord& item) {
  if (given.resolutions_of(item.check) != nullptr) return given;
  if (item.generation.empty() || item.generation[0] != '/') return std::nullopt;
  auto own = machine.plan_at(item.generation);
  if (own) return std::move(*own);
  return std::nullopt;
}

// A failed generation's entries stay +0-DONE, so systemd-boot would skip the generation the
// choice is for: give them their tries back (as `retry` does). Best effort: the choice is
// committed already; a failure says what to do.
int rearm_generation(const Machine& machine, const std::string& esp, const BootFacts& facts,
                     const std::string& generation) {
  if (generation.empty() || generation == facts.booted_generation) return kExitOk;
  auto rearmed = rearm_entries(machine, esp, facts, generation);
  if (!rearmed) {
    std::fprintf(stderr,
                 "bootstate: the choice is recorded, but the boot entry of %s could not be "
                 "re-armed, so systemd-boot may skip it: %s\n",
                 generation.c_str(), rearmed.error().message.c_str());
    return kExitFailed;
  }
  print_rearmed(generation, *rearmed);
  return kExitOk;
}

}  // namespace

int choose_command(const Machine& machine) {
  const Options& options = machine.options();
  auto facts = machine.boot_facts();
  if (!facts) return report_error(facts.error());
  auto plan = machine.booted_plan(std::nullopt, *facts);
  if (!plan) return report_error(plan.error());
  auto esp = machine.esp();
  if (!esp) return report_error(esp.error());
  // Before the checks run: a caller that cannot write the store learns it at once.
  if (auto access = DecisionStore::check_access(machine, *esp); !access) {
    return report_error(access.error());
  }

  // The item as the plan's checks report it now, unless the store knows it already (a boot
  // recorded it, or --clear, which needs no item).
  std::vector<ItemRecord> fresh;
  const std::string generation = plan_generation(*facts, *plan);
  if (!options.clear && !plan->checks.empty()) {
    auto known = read_state(machine);  // reads only; the decision below reloads under the lock
    const bool recorded = known && find_item(known->state.items, options.argument).has_value();
    if (!recorded) {
      Executors executors;
      CheckRunContext context;
      context.generation = generation;
      context.root = machine.root();
      fresh = item_records(run_checks(*plan, std::nullopt, executors.checks(), context), *plan,
                           generation, 0, facts->now_usec);
    }
  }

  auto store = DecisionStore::open(machine, *esp);
  if (!store) return report_error(store.error());
  const State& loaded = store->state;

  if (options.clear) {
    auto cleared = clear_choice(loaded, options.argument);
    if (!cleared) return report_error(cleared.error());
    if (auto committed = store->commit(*cleared); !committed) {
      return report_error(committed.error());
    }
    std::printf("item \"%s\": choice withdrawn\n", options.argument.c_str());
    return kExitOk;
  }

  // The item in the state the lock protects (a run may have recorded it meanwhile), else the
  // fresh run's.
  std::vector<ItemRecord> candidates = loaded.items;
  candidates.insert(candidates.end(), fresh.begin(), fresh.end());
  auto item = find_item(candidates, options.argument);
  if (!item) return report_error(item.error());
  const std::optional<Plan> item_plan = plan_for(machine, *plan, **item);
  const ItemRecord chosen_item = **item;
  auto decided = choose_resolution(loaded, candidates, item_plan ? &*item_plan : nullptr,
                                   options.argument, options.resolution, facts->now_usec);
  if (!decided) return report_error(decided.error());
  if (auto committed = store->commit(*decided); !committed) return report_error(committed.error());
  const std::string migration = resolution_migration_id(chosen_item.check, options.resolution);
  const std::string_view retried = source_migration(chosen_item.check);
  std::printf(
      "item \"%s\": resolution \"%s\" chosen; it runs as migration \"%s\" at the next boot "
      "of %s%s\n",
      chosen_item.id.c_str(), options.resolution.c_str(), migration.c_str(),
      chosen_item.generation.c_str(),
      retried.empty() ? "" : fmt::format(", then migration \"{}\" runs again", retried).c_str());
  return rearm_generation(machine, *esp, *facts, chosen_item.generation);
}

}  // namespace bootstate::cli

// Items in the state and the operator's choices, as pure functions (docs/DESIGN.md "Checks and
// resolutions", and docs/DESIGN.md "Additions and changes → Checks" for what the contract left
// open):
//  - items are recorded per (generation, check, item id); a new run of a check replaces what it
//    reported for that generation, keeping the items that have a choice (shown resolved);
//  - a choice is per (generation, check, item): its resolution runs as migration
//    "CHECK.RESOLUTION" in the attempts of that generation only; another generation's plan does
//    not get it, so booting that one undoes it like any stale migration;
//  - an item's state is derived, never stored: open (no choice), chosen (its migration has not
//    finished), resolved (applied), failed (its migration failed);
//  - a running step's item (source "MIGRATION/STEP") may offer the resolutions its migration
//    declares: the choice is recorded with `check` = that source (the item's identity, as for
//    a check's item), runs as migration "MIGRATION.RESOLUTION", and MIGRATION then runs after
//    it (its failed step is retried once the resolution is applied).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/check_items.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

inline constexpr std::size_t kChoiceLimit = 64;

enum class ItemState : std::uint8_t { Open, Chosen, Resolved, Failed };
std::string_view to_string(ItemState state);

struct ItemView {
  ItemRecord item;
  std::string chosen;  // the chosen resolution's id, empty when none
  ItemState state = ItemState::Open;
  bool blocker = false;  // an error item without a choice
};

// The items of `items` (recorded or fresh), with their choice and state in `state`.
std::vector<ItemView> item_views(const std::vector<ItemRecord>& items, const State& state);

// `items` as records of `generation`, with the descriptions of their resolutions from `plan`.
std::vector<ItemRecord> item_records(const std::vector<CheckItem>& items, const Plan& plan,
                                     const std::string& generation, std::uint64_t attempt,
                                     std::int64_t now_usec);

// Replaces the items `checks` reported for `generation` by `fresh` (of those checks), keeping
// old ones that have a choice; the list stays within kItemLimit (oldest other generations'
// items go first). Returns whether anything changed.
bool record_items(State& state, const std::vector<std::string>& checks,
                  const std::vector<ItemRecord>& fresh, const std::string& generation);

// An attempt of `generation` completed (the state's current attempt): the items and choices of
// other generations are dropped, except those of the generation whose attempt came right
// before it and failed or was abandoned (the one just fallen back from, which the operator may
// still choose for or retry). Without this, items of generations long left behind stayed in
// `status` until kItemLimit pushed them out. Returns whether anything was dropped.
bool forget_items_left_behind(State& state, const std::string& generation);

const ChoiceRecord* find_choice(const State& state, std::string_view generation,
                                std::string_view check, std::string_view item);

// `plan` with the resolutions chosen for `generation` appended as migrations (policy required,
// id "CHECK.RESOLUTION" or "MIGRATION.RESOLUTION"; MIGRATION gets `after` the latter); nullopt
// when there are none (a plan without checks or migration resolutions never has any), so
// callers use `plan` itself and pay nothing.
std::optional<Plan> plan_with_choices(const Plan& plan, const State& state,
                                      std::string_view generation);

// `bootstate choose ITEM RESOLUTION`: ITEM is an item id, or SOURCE/ITEM (CHECK/ITEM,
// MIGRATION/STEP/ITEM) when several sources report that id. `candidates`: the items known for the
// choice (recorded ones and those a fresh run of the plan's checks found). `plan`: the plan of the
// item's generation when known; its check must still offer RESOLUTION. InvalidInput naming the item
// or resolution otherwise. The failed attempt of that generation is reopened (the operator answered
// what stopped it); for a step's item, its failed migration is retried (retry_migration) when
// `plan` is known.
Expected<State> choose_resolution(State state, const std::vector<ItemRecord>& candidates,
                                  const Plan* plan, std::string_view item,
                                  std::string_view resolution, std::int64_t now_usec);

// `bootstate choose ITEM --clear`: withdraws the choice (InvalidInput when there is none). A
// resolution that has started is not withdrawn by this: its migration stays recorded and is
// undone when its generation boots without it, like any stale migration.
Expected<State> clear_choice(State state, std::string_view item);

// The item `argument` (ID or CHECK/ID) names among `candidates`: InvalidInput when none or
// several do.
Expected<const ItemRecord*> find_item(const std::vector<ItemRecord>& candidates,
                                      std::string_view argument);

}  // namespace bootstate

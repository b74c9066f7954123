#include "core/choices.hpp"

#include <algorithm>

#include "core/operator.hpp"
#include "core/transitions.hpp"

namespace bootstate {
namespace {

Error invalid(std::string message) {
  return Error{ErrorCode::InvalidInput, std::move(message)};
}

std::string offered(const ItemRecord& item) {
  if (item.resolutions.empty()) return "it offers no resolution";
  std::string ids;
  for (const ItemResolutionRecord& resolution : item.resolutions) {
    ids += (ids.empty() ? "" : ", ") + resolution.id;
  }
  return "it offers: " + ids;
}

// CHECK/ITEM, MIGRATION/STEP/ITEM (a step's item) or ITEM: an item id has no slash, so the
// last one ends the source.
std::pair<std::string_view, std::string_view> split_item(std::string_view argument) {
  const std::size_t slash = argument.rfind('/');
  if (slash == std::string_view::npos) return {{}, argument};
  return {argument.substr(0, slash), argument.substr(slash + 1)};
}

// A step's error item reported again after its chosen resolution finished: the resolution did
// not resolve it (its migration failed again on it). A check's item is judged by checks_ran.
bool reported_after(const ItemRecord& item, const MigrationRecord& resolution) {
  if (source_migration(item.check).empty() || item.severity != "error") return false;
  std::int64_t finished = 0;
  for (const StepRecord& step : resolution.steps) finished = std::max(finished, step.finished_usec);
  return item.reported_usec >= finished;  // one run shares its clock reading: M ran after it
}

}  // namespace

std::string_view to_string(ItemState state) {
  switch (state) {
    case ItemState::Open:
      return "open";
    case ItemState::Chosen:
      return "chosen";
    case ItemState::Resolved:
      return "resolved";
    case ItemState::Failed:
      return "failed";
  }
  return "open";
}

std::vector<ItemView> item_views(const std::vector<ItemRecord>& items, const State& state) {
  std::vector<ItemView> views;
  views.reserve(items.size());
  for (const ItemRecord& item : items) {
    ItemView view;
    view.item = item;
    if (const ChoiceRecord* choice = find_choice(state, item.generation, item.check, item.id)) {
      view.chosen = choice->resolution;
      view.state = ItemState::Chosen;
      const MigrationRecord* record =
          state.find(resolution_migration_id(item.check, choice->resolution));
      if (record != nullptr && record->state == MigrationState::Applied) {
        view.state = reported_after(item, *record) ? ItemState::Failed : ItemState::Resolved;
      } else if (record != nullptr && record->state == MigrationState::Failed) {
        view.state = ItemState::Failed;
      }
    }
    // An unknown severity word (a newer bootstate) is treated as the strictest.
    auto severity = parse_severity(item.severity);
    view.blocker = (!severity || *severity == Severity::Error) && view.chosen.empty();
    views.push_back(std::move(view));
  }
  return views;
}

std::vector<ItemRecord> item_records(const std::vector<CheckItem>& items, const Plan& plan,
                                     const std::string& generation, std::uint64_t attempt,
                                     std::int64_t now_usec) {
  std::vector<ItemRecord> records;
  records.reserve(items.size());
  for (const CheckItem& item : items) {
    ItemRecord record;
    record.id = item.id;
    record.check = item.check;
    record.severity = std::string(to_string(item.severity));
    record.message = item.message;
    record.default_resolution = item.default_resolution;
    record.generation = generation;
    record.attempt = attempt;
    record.reported_usec = now_usec;
    const Check* check = plan.find_check(item.check);
    for (const std::string& id : item.resolutions) {
      const CheckResolution* resolution = check ? check->find(id) : nullptr;
      record.resolutions.push_back({id, resolution ? resolution->description : std::string()});
    }
    records.push_back(std::move(record));
  }
  return records;
}

bool record_items(State& state, const std::vector<std::string>& checks,
                  const std::vector<ItemRecord>& fresh, const std::string& generation) {
  const std::vector<ItemRecord> before = state.items;
  auto replaced = [&](const ItemRecord& item) {
    if (item.generation != generation ||
        std::find(checks.begin(), checks.end(), item.check) == checks.end()) {
      return false;
    }
    // Reported again: the fresh record replaces it. Gone, but chosen: kept, so status shows
    // what the resolution did (resolved) instead of forgetting the item.
    const bool again = std::any_of(fresh.begin(), fresh.end(), [&](const ItemRecord& other) {
      return other.check == item.check && other.id == item.id;
    });
    return again || find_choice(state, generation, item.check, item.id) == nullptr;
  };
  std::erase_if(state.items, replaced);
  state.items.insert(state.items.end(), fresh.begin(), fresh.end());
  while (state.items.size() > kItemLimit) {
    // Another generation's oldest first; this generation's only when nothing else is left.
    auto oldest = std::find_if(state.items.begin(), state.items.end(), [&](const ItemRecord& item) {
      return item.generation != generation;
    });
    state.items.erase(oldest == state.items.end() ? state.items.begin() : oldest);
  }
  auto same = [](const ItemRecord& a, const ItemRecord& b) {
    return a.id == b.id && a.check == b.check && a.generation == b.generation &&
           a.severity == b.severity && a.message == b.message && a.attempt == b.attempt &&
           a.default_resolution == b.default_resolution &&
           a.resolutions.size() == b.resolutions.size();
  };
  return !std::equal(before.begin(), before.end(), state.items.begin(), state.items.end(), same);
}

bool forget_items_left_behind(State& state, const std::string& generation) {
  if (state.items.empty() && state.choices.empty()) return false;
  std::string fallen_back_from;
  if (!state.history.empty()) {
    const Attempt& before = state.history.back();
    if (before.state == AttemptState::Failed || before.state == AttemptState::Abandoned) {
      fallen_back_from = before.generation;
    }
  }
  auto left_behind = [&](const std::string& of) {
    return of != generation && (fallen_back_from.empty() || of != fallen_back_from);
  };
  const std::size_t before = state.items.size() + state.choices.size();
  std::erase_if(state.items, [&](const ItemRecord& item) { return left_behind(item.generation); });
  std::erase_if(state.choices,
                [&](const ChoiceRecord& choice) { return left_behind(choice.generation); });
  return state.items.size() + state.choices.size() != before;
}

const ChoiceRecord* find_choice(const State& state, std::string_view generation,
                                std::string_view check, std::string_view item) {
  for (const ChoiceRecord& choice : state.choices) {
    if (choice.generation == generation && choice.check == check && choice.item == item) {
      return &choice;
    }
  }
  return nullptr;
}

namespace {

// Whether one of `targets` is `start` or runs after it in `plan`: then `start` cannot be made to
// run after `targets`. Only for the few choices of step items.
bool reaches(const Plan& plan, std::string_view start, const std::vector<std::string>& targets) {
  const std::vector<bool> reached = start_and_followers(plan, plan.index.find(start)->second);
  return std::any_of(targets.begin(), targets.end(), [&](const std::string& target) {
    auto found = plan.index.find(target);
    return found != plan.index.end() && reached[found->second];
  });
}

}  // namespace

std::optional<Plan> plan_with_choices(const Plan& plan, const State& state,
                                      std::string_view generation) {
  if (!plan.offers_resolutions() || state.choices.empty()) return std::nullopt;
  std::optional<Plan> expanded;
  for (const ChoiceRecord& choice : state.choices) {
    if (choice.generation != generation) continue;
    const std::vector<CheckResolution>* offered = plan.resolutions_of(choice.check);
    const CheckResolution* resolution = nullptr;
    for (std::size_t i = 0; offered != nullptr && i < offered->size(); ++i) {
      if ((*offered)[i].id == choice.resolution) resolution = &(*offered)[i];
    }
    if (resolution == nullptr) continue;  // the plan changed: status says the choice is unused
    if (!expanded) expanded = plan;
    const std::string& id = resolution->migration.id;
    const std::string_view owner = source_migration(choice.check);
    if (!owner.empty()) {
      // A step's item: its migration runs again after the resolution (docs/DESIGN.md "Items
      // reported by a running step"). The parser refused a resolution that follows its own
      // migration; two chosen resolutions of migrations that follow each other could still
      // close a cycle, and then this one is left out (the migration fails as before).
      if (reaches(*expanded, owner, resolution->migration.after)) continue;
      Migration& retried = expanded->migrations[expanded->index.find(owner)->second];
      if (std::find(retried.after.begin(), retried.after.end(), id) == retried.after.end()) {
        retried.after.push_back(id);
      }
    }
    if (expanded->find(id) != nullptr) continue;  // chosen for 2 items
    expanded->index.emplace(id, expanded->migrations.size());
    expanded->migrations.push_back(resolution->migration);
  }
  return expanded;
}

Expected<const ItemRecord*> find_item(const std::vector<ItemRecord>& candidates,
                                      std::string_view argument) {
  auto [check, id] = split_item(argument);
  const ItemRecord* found = nullptr;
  for (const ItemRecord& item : candidates) {
    if (item.id != id || (!check.empty() && item.check != check)) continue;
    if (found != nullptr && found->check != item.check) {
      return invalid(
          fmt::format("item \"{}\" is reported by checks \"{}\" and \"{}\": name it as CHECK/ITEM "
                      "(\"{}/{}\")",
                      id, found->check, item.check, found->check, id));
    }
    // The same item of several generations: the one reported last.
    if (found == nullptr || item.reported_usec >= found->reported_usec) found = &item;
  }
  if (found == nullptr) {
    return invalid(fmt::format(
        "unknown item \"{}\" (no check reported it; `bootstate preview` lists the items)",
        argument));
  }
  return found;
}

Expected<State> choose_resolution(State state, const std::vector<ItemRecord>& candidates,
                                  const Plan* plan, std::string_view argument,
                                  std::string_view resolution, std::int64_t now_usec) {
  auto found = find_item(candidates, argument);
  if (!found) return found.error();
  const ItemRecord& item = **found;
  const bool offered_by_item =
      std::any_of(item.resolutions.begin(), item.resolutions.end(),
                  [&](const ItemResolutionRecord& each) { return each.id == resolution; });
  if (!offered_by_item) {
    return invalid(fmt::format("item \"{}\" has no resolution \"{}\" ({})", item.id, resolution,
                               offered(item)));
  }
  const std::string_view step_of = source_migration(item.check);
  if (plan != nullptr) {
    const std::vector<CheckResolution>* templates = plan->resolutions_of(item.check);
    const bool declared = templates != nullptr && std::any_of(templates->begin(), templates->end(),
                                                              [&](const CheckResolution& each) {
                                                                return each.id == resolution;
                                                              });
    if (!declared) {
      return invalid(fmt::format(
          "resolution \"{}\" of item \"{}\" is no longer in the plan of {} ({} \"{}\" {}): "
          "run `bootstate preview` for what the plan offers now",
          resolution, item.id, item.generation, step_of.empty() ? "check" : "migration",
          step_of.empty() ? std::string_view(item.check) : step_of,
          templates == nullptr ? "is gone" : "does not declare it"));
    }
  }
  ChoiceRecord choice{item.id, item.check, std::string(resolution), now_usec, item.generation};
  auto existing =
      std::find_if(state.choices.begin(), state.choices.end(), [&](const ChoiceRecord& each) {
        return each.generation == item.generation && each.check == item.check &&
               each.item == item.id;
      });
  if (existing != state.choices.end()) {
    if (existing->resolution == resolution) return state;  // already: idempotent
    state.choices.erase(existing);
  }
  state.choices.push_back(std::move(choice));
  if (state.choices.size() > kChoiceLimit) state.choices.erase(state.choices.begin());
  // The item is kept with the choice even if only a fresh run (preview) found it: status shows
  // it, and the next run of its check replaces it.
  const bool recorded =
      std::any_of(state.items.begin(), state.items.end(), [&](const ItemRecord& each) {
        return each.generation == item.generation && each.check == item.check && each.id == item.id;
      });
  if (!recorded) {
    state.items.push_back(item);
    if (state.items.size() > kItemLimit) state.items.erase(state.items.begin());
  }
  // A step's item: its failed migration runs again, after the resolution (plan_with_choices),
  // as `bootstate retry MIGRATION` would have it (after a fallback, that changes nothing: the
  // generation's next boot starts a new attempt).
  if (!step_of.empty() && plan != nullptr && plan->find(step_of) != nullptr) {
    const MigrationRecord* record = state.find(step_of);
    if (record != nullptr && record->state == MigrationState::Failed) {
      auto retried = retry_migration(std::move(state), *plan, step_of);
      if (!retried) return retried.error();
      state = std::move(*retried);
    }
  }
  // The failed attempt of that generation goes on: the operator answered what stopped it.
  if (state.attempt && state.attempt->state == AttemptState::Failed &&
      state.attempt->generation == item.generation) {
    BOOTSTATE_TRY(advance(state.attempt->state, AttemptEvent::Reopen));
    state.attempt->reason.clear();
    state.attempt->boots_without_progress = 0;
  }
  return state;
}

Expected<State> clear_choice(State state, std::string_view argument) {
  auto [check, id] = split_item(argument);
  const auto before = state.choices.size();
  std::erase_if(state.choices, [&](const ChoiceRecord& choice) {
    return choice.item == id && (check.empty() || choice.check == check);
  });
  if (state.choices.size() == before) {
    return invalid(fmt::format("item \"{}\" has no choice to clear", argument));
  }
  return state;
}

}  // namespace bootstate

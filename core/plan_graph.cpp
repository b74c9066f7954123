// The rules of a plan that span migrations: ids, `after` references and cycles.
#include <set>
#include <vector>

#include "core/plan_rules.hpp"

namespace bootstate {
namespace {

enum class Mark { Unvisited, InProgress, Done };

// Position of migration `id` in the plan (the first one with that id); the caller checked that
// it exists.
std::size_t position(const Plan& plan, std::string_view id) {
  return static_cast<std::size_t>(plan.find(id) - plan.migrations.data());
}

// Depth-first search from migration `at`; on a back edge, returns the cycle as "a → b → a".
// Marks are by plan position: with 1,000 migrations, a map keyed by id strings cost more than
// the rest of the check (docs/PERFORMANCE.md "(b)").
std::optional<std::string> find_cycle(const Plan& plan, std::size_t at, std::vector<Mark>& marks,
                                      std::vector<std::string>& trail) {
  marks[at] = Mark::InProgress;
  const Migration& migration = plan.migrations[at];
  trail.push_back(migration.id);
  for (const std::string& before : migration.after) {
    const std::size_t next = position(plan, before);
    if (marks[next] == Mark::InProgress) {
      std::string cycle;
      bool in_cycle = false;
      for (const std::string& step : trail) {
        in_cycle = in_cycle || step == before;
        if (in_cycle) cycle += step + " → ";
      }
      return cycle + before;
    }
    if (marks[next] == Mark::Unvisited) {
      if (auto cycle = find_cycle(plan, next, marks, trail)) return cycle;
    }
  }
  trail.pop_back();
  marks[at] = Mark::Done;
  return std::nullopt;
}

}  // namespace

Expected<void> check_migration_graph(const Plan& plan) {
  // A duplicate is a migration that is not the first with its id (Plan::find gives the first).
  std::set<std::string_view> ids;  // only for a plan built without parse_plan's index
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    const std::string& id = plan.migrations[i].id;
    const bool duplicate = plan.index.empty() ? !ids.insert(id).second : position(plan, id) != i;
    if (duplicate) {
      return make_error(ErrorCode::InvalidInput, "migrations[{}].id: duplicate migration id \"{}\"",
                        i, id);
    }
  }
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    const Migration& migration = plan.migrations[i];
    for (std::size_t j = 0; j < migration.after.size(); ++j) {
      const std::string& before = migration.after[j];
      if (before == migration.id) {
        return make_error(ErrorCode::InvalidInput,
                          "migrations[{}].after[{}]: a migration cannot follow itself", i, j);
      }
      if (plan.find(before) == nullptr) {
        return make_error(ErrorCode::InvalidInput,
                          "migrations[{}].after[{}]: unknown migration \"{}\"", i, j, before);
      }
    }
  }
  std::vector<Mark> marks(plan.migrations.size(), Mark::Unvisited);
  std::vector<std::string> trail;
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    if (marks[i] != Mark::Unvisited) continue;
    trail.clear();
    if (auto cycle = find_cycle(plan, i, marks, trail)) {
      return make_error(ErrorCode::InvalidInput, "migrations[{}].after: dependency cycle {}", i,
                        *cycle);
    }
  }
  return {};
}

}  // namespace bootstate

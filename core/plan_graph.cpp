// The rules of a plan that span migrations: ids, `after` references and cycles.
#include <map>
#include <set>

#include "core/plan_rules.hpp"

namespace bootstate {
namespace {

enum class Mark { Unvisited, InProgress, Done };

// Depth-first search; on a back edge, returns the cycle as "a → b → a".
std::optional<std::string> find_cycle(const Plan& plan, const std::string& id,
                                      std::map<std::string, Mark>& marks,
                                      std::vector<std::string>& trail) {
  marks[id] = Mark::InProgress;
  trail.push_back(id);
  const Migration* migration = plan.find(id);
  for (const std::string& before : migration->after) {
    if (marks[before] == Mark::InProgress) {
      std::string cycle;
      bool in_cycle = false;
      for (const std::string& step : trail) {
        in_cycle = in_cycle || step == before;
        if (in_cycle) cycle += step + " → ";
      }
      return cycle + before;
    }
    if (marks[before] == Mark::Unvisited) {
      if (auto cycle = find_cycle(plan, before, marks, trail)) return cycle;
    }
  }
  trail.pop_back();
  marks[id] = Mark::Done;
  return std::nullopt;
}

}  // namespace

Expected<void> check_migration_graph(const Plan& plan) {
  std::set<std::string> ids;
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    if (!ids.insert(plan.migrations[i].id).second) {
      return make_error(ErrorCode::InvalidInput, "migrations[{}].id: duplicate migration id \"{}\"",
                        i, plan.migrations[i].id);
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
      if (ids.count(before) == 0) {
        return make_error(ErrorCode::InvalidInput,
                          "migrations[{}].after[{}]: unknown migration \"{}\"", i, j, before);
      }
    }
  }
  std::map<std::string, Mark> marks;
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    std::vector<std::string> trail;
    if (marks[plan.migrations[i].id] != Mark::Unvisited) continue;
    if (auto cycle = find_cycle(plan, plan.migrations[i].id, marks, trail)) {
      return make_error(ErrorCode::InvalidInput, "migrations[{}].after: dependency cycle {}", i,
                        *cycle);
    }
  }
  return {};
}

}  // namespace bootstate

// The rules of a plan that span migrations: ids, `after` references and cycles.
#include <functional>
#include <optional>
#include <queue>
#include <set>
#include <string>
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

// The cycle that closes at `before`, as "a → b → a", from the path of the search. A long cycle
// is shortened in the middle: a message of 100,000 ids helps nobody.
std::string describe_cycle(const Plan& plan, const std::vector<std::size_t>& path,
                           const std::string& before) {
  std::size_t first = 0;
  while (plan.migrations[path[first]].id != before) ++first;
  const std::size_t length = path.size() - first;
  constexpr std::size_t kShown = 8;  // the first and last four of a longer cycle
  std::string cycle;
  for (std::size_t i = first; i < path.size(); ++i) {
    const std::size_t index = i - first;
    if (length > kShown && index == kShown / 2) {
      cycle += fmt::format("… ({} more) → ", length - kShown);
      i = path.size() - kShown / 2 - 1;
      continue;
    }
    cycle += plan.migrations[path[i]].id + " → ";
  }
  return cycle + before;
}

// Depth-first search from migration `start`; on a back edge, returns the cycle as "a → b → a".
// With an explicit stack, not recursion: a 100,000-long `after` chain overflowed the call stack
// (issue #13). Marks are by plan position: with 1,000 migrations, a map keyed by id strings cost
// more than the rest of the check (docs/PERFORMANCE.md "(b)").
std::optional<std::string> find_cycle(const Plan& plan, std::size_t start,
                                      std::vector<Mark>& marks) {
  struct Frame {
    std::size_t at;
    std::size_t next_after = 0;  // the index in `after` to follow next
  };
  std::vector<Frame> stack;
  std::vector<std::size_t> path;  // the migrations of `stack`, for the message
  marks[start] = Mark::InProgress;
  stack.push_back({start});
  path.push_back(start);
  while (!stack.empty()) {
    Frame& frame = stack.back();
    const Migration& migration = plan.migrations[frame.at];
    if (frame.next_after == migration.after.size()) {
      marks[frame.at] = Mark::Done;
      stack.pop_back();
      path.pop_back();
      continue;
    }
    const std::string& before = migration.after[frame.next_after++];
    const std::size_t next = position(plan, before);
    if (marks[next] == Mark::InProgress) return describe_cycle(plan, path, before);
    if (marks[next] == Mark::Unvisited) {
      marks[next] = Mark::InProgress;
      stack.push_back({next});  // `frame` is not used after this
      path.push_back(next);
    }
  }
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
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    if (marks[i] != Mark::Unvisited) continue;
    if (auto cycle = find_cycle(plan, i, marks)) {
      return make_error(ErrorCode::InvalidInput, "migrations[{}].after: dependency cycle {}", i,
                        *cycle);
    }
  }
  return {};
}

std::vector<std::size_t> migration_order(const Plan& plan) {
  // Kahn's algorithm, always taking the ready migration that comes first in the plan. It was a
  // scan of the whole plan for each migration placed, in the engine at every decision: a plan
  // of 1,000 migrations each `after` the next took 141 s for `status` (issue #13 review).
  const std::size_t count = plan.migrations.size();
  std::vector<std::size_t> unplaced_before(count, 0);      // its `after` entries not yet placed
  std::vector<std::vector<std::size_t>> followers(count);  // the migrations `after` it
  for (std::size_t i = 0; i < count; ++i) {
    for (const std::string& before : plan.migrations[i].after) {
      followers[position(plan, before)].push_back(i);
      ++unplaced_before[i];
    }
  }
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < count; ++i) {
    if (unplaced_before[i] == 0) ready.push(i);
  }
  std::vector<std::size_t> order;
  order.reserve(count);
  while (!ready.empty()) {
    const std::size_t next = ready.top();
    ready.pop();
    order.push_back(next);
    for (std::size_t follower : followers[next]) {
      if (--unplaced_before[follower] == 0) ready.push(follower);
    }
  }
  return order;
}

std::vector<std::vector<std::size_t>> followers_of(const Plan& plan) {
  std::vector<std::vector<std::size_t>> followers(plan.migrations.size());
  for (std::size_t index = 0; index < plan.migrations.size(); ++index) {
    for (const std::string& before : plan.migrations[index].after) {
      auto found = plan.index.find(before);
      if (found != plan.index.end()) followers[found->second].push_back(index);
    }
  }
  return followers;
}

std::vector<bool> start_and_followers(const Plan& plan, std::size_t start) {
  const std::vector<std::vector<std::size_t>> followers = followers_of(plan);
  std::vector<bool> reached(plan.migrations.size(), false);
  std::vector<std::size_t> queue{start};
  reached[start] = true;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    for (std::size_t follower : followers[queue[head]]) {
      if (reached[follower]) continue;
      reached[follower] = true;
      queue.push_back(follower);
    }
  }
  return reached;
}

}  // namespace bootstate

// The views next() decides from, carried across the decisions of one phase run (issue #17).
//
// next() looks at every migration: which is blocked, which asks for a reboot, which stale one
// has undo left, which is the first with a step of this phase. Rebuilt at every decision, that
// made a run (and `status`/`preview`, which simulate runs) quadratic in the number of
// migrations: 1,000 pending cost 2.1 G instructions, 2,000 five times that. Between two
// decisions only the record of the migration the last decision named changes (the runner
// carries out what it is told), so the cache recomputes that migration's views, and the views
// of those that follow it (`after`) as long as theirs change, and keeps the first of each kind
// in ordered sets. Every cached view is made by the function plan_view/stale_view use, so the
// decisions are the ones next() makes without a cache (tests/core/test_engine_scale.cpp
// compares both at every decision).
//
// The owner (the phase runner) calls forget() after any commit that is not the outcome of a
// decision (reconcile, the checks, a parallel batch).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/engine.hpp"

namespace bootstate {

struct DecisionCache {
  // The state changed other than through the decisions next() handed out: everything is
  // computed again at the next decision.
  void forget() { valid = false; }

  // --- the engine's own (engine_cache.cpp) ------------------------------------------------
  bool valid = false;
  // What the views were made for. Another input (another phase, another boot: the idle check
  // asks about every phase) is answered without the cache, which stays as it is.
  const Plan* plan = nullptr;
  const PlanIndex* index = nullptr;
  const std::map<std::string, Migration>* recorded = nullptr;
  Phase phase = Phase::PostActivation;
  std::string boot_id;
  std::int64_t store_reset_usec = 0;
  // The records the views point into: when the vector moved, everything is made again (it
  // grows geometrically, so that costs O(n) in all).
  const MigrationRecord* records_data = nullptr;
  std::size_t records_size = 0;

  std::vector<std::string> dirty;  // ids of the migrations of decisions handed out since

  // By plan position.
  std::vector<std::size_t> rank_of;                  // its index in index->order
  std::vector<std::vector<std::size_t>> dependents;  // positions of those `after` it
  std::vector<std::size_t> record_at;                // its first record, or kNoRecord
  std::vector<Readiness> readiness_of;
  std::vector<std::size_t> cause_of;
  // By rank (execution order): plan_view's result, and the ranks where next() stops.
  std::vector<MigrationView> views;
  std::set<std::size_t> blocked;  // required_work_blocked would name it
  std::set<std::size_t> forward;  // runnable, its next step is of this phase

  // By record index (state.migrations).
  std::unordered_map<std::string, std::vector<std::size_t>> records_by_id;
  std::vector<char> reboot;  // asks for a reboot in this boot
  std::size_t reboot_count = 0;
  std::vector<std::optional<StaleView>> stale;  // stale_view's entry
  std::set<std::size_t> undo;                   // stale, not kept, undo pending

  static constexpr std::size_t kNoRecord = static_cast<std::size_t>(-1);
};

namespace engine_detail {

// Brings `cache` up to `state`; false when it cannot answer for `input` (next() then computes
// every view as it does without a cache).
bool refresh_cache(DecisionCache& cache, const State& state, const EngineInput& input);

}  // namespace engine_detail
}  // namespace bootstate

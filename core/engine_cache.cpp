// The decision cache (core/decision_cache.hpp): plan_view's and stale_view's entries kept from
// one decision to the next, each recomputed by the function those views use when the record
// it depends on (or the view of one it follows) changed.
#include <algorithm>

#include "core/decision_cache.hpp"
#include "core/engine_internal.hpp"

namespace bootstate::engine_detail {
namespace {

template <typename T>
void keep_if(std::set<T>& set, const T& value, bool kept) {
  if (kept) {
    set.insert(value);
  } else {
    set.erase(value);
  }
}

// The entries of record `at`: does it ask for a reboot, is it stale with undo left.
void update_record(DecisionCache& cache, const State& state, const EngineInput& input,
                   std::size_t at) {
  const MigrationRecord& record = state.migrations[at];
  const bool asks = asks_reboot(record, input);
  if (asks != static_cast<bool>(cache.reboot[at])) {
    cache.reboot_count = asks ? cache.reboot_count + 1 : cache.reboot_count - 1;
    cache.reboot[at] = asks;
  }
  cache.stale[at] = stale_of(record, *input.plan, *input.recorded, input.index);
  const bool undo = cache.stale[at] && !cache.stale[at]->kept && cache.stale[at]->pending;
  keep_if(cache.undo, at, undo);
}

// Makes the view at `rank` again; true when it changed in what the views after it read (its
// readiness, its cause, or the words that name them).
bool update_view(DecisionCache& cache, const State& state, const EngineInput& input,
                 std::size_t rank) {
  const std::size_t position = input.index->order[rank];
  const std::size_t at = cache.record_at[position];
  const MigrationRecord* record = at == DecisionCache::kNoRecord ? nullptr : &state.migrations[at];
  std::size_t cause = kNoCause;
  MigrationView view = view_of(*input.plan, state, *input.index, position, record,
                               cache.readiness_of, cache.cause_of, cause);
  const bool changed = view.readiness != cache.readiness_of[position] ||
                       cause != cache.cause_of[position] || view.detail != cache.views[rank].detail;
  cache.readiness_of[position] = view.readiness;
  cache.cause_of[position] = cause;
  keep_if(cache.blocked, rank, fails_attempt(view));
  const Step* step =
      view.readiness == Readiness::Runnable ? open_step(*view.migration, record) : nullptr;
  keep_if(cache.forward, rank, step != nullptr && step->phase == input.phase);
  cache.views[rank] = std::move(view);
  return changed;
}

// Adds record `at` (new, or at a rebuild) to the indexes by id and by plan position.
void index_record(DecisionCache& cache, const State& state, const EngineInput& input,
                  std::size_t at) {
  const std::string& id = state.migrations[at].id;
  cache.records_by_id[id].push_back(at);
  cache.reboot.push_back(0);
  cache.stale.emplace_back();
  update_record(cache, state, input, at);
  auto found = input.index->position.find(id);
  // The first record of an id is the one plan_view reads (as State::find).
  if (found != input.index->position.end() &&
      cache.record_at[found->second] == DecisionCache::kNoRecord) {
    cache.record_at[found->second] = at;
  }
}

void rebuild(DecisionCache& cache, const State& state, const EngineInput& input) {
  const PlanIndex& index = *input.index;
  const std::size_t count = input.plan->migrations.size();
  cache.plan = input.plan;
  cache.index = input.index;
  cache.recorded = input.recorded;
  cache.phase = input.phase;
  cache.boot_id = input.facts.boot_id;
  cache.store_reset_usec = state.store_reset_usec;
  cache.rank_of.assign(count, 0);
  for (std::size_t rank = 0; rank < index.order.size(); ++rank)
    cache.rank_of[index.order[rank]] = rank;
  cache.dependents.assign(count, {});
  for (std::size_t position = 0; position < count; ++position) {
    for (const std::size_t before : index.after[position])
      cache.dependents[before].push_back(position);
  }
  cache.record_at.assign(count, DecisionCache::kNoRecord);
  cache.records_by_id.clear();
  cache.reboot.clear();
  cache.reboot_count = 0;
  cache.stale.clear();
  cache.undo.clear();
  for (std::size_t at = 0; at < state.migrations.size(); ++at)
    index_record(cache, state, input, at);
  cache.readiness_of.assign(count, Readiness::Applied);
  cache.cause_of.assign(count, kNoCause);
  cache.views.assign(count, MigrationView{});
  cache.blocked.clear();
  cache.forward.clear();
  for (std::size_t rank = 0; rank < index.order.size(); ++rank)
    update_view(cache, state, input, rank);
  cache.records_data = state.migrations.data();
  cache.records_size = state.migrations.size();
  cache.dirty.clear();
  cache.valid = true;
}

}  // namespace

bool refresh_cache(DecisionCache& cache, const State& state, const EngineInput& input) {
  if (input.index == nullptr || input.recorded == nullptr) return false;
  if (cache.valid &&
      (cache.plan != input.plan || cache.index != input.index || cache.recorded != input.recorded ||
       cache.phase != input.phase || cache.boot_id != input.facts.boot_id)) {
    return false;  // asked about another phase or boot: answered without the cache
  }
  if (!cache.valid || cache.store_reset_usec != state.store_reset_usec ||
      cache.records_data != state.migrations.data() ||
      cache.records_size > state.migrations.size()) {
    rebuild(cache, state, input);
    return true;
  }
  // A record that moved within the vector (step_started makes the migration whose step starts
  // the newest record: those after it shift by one) leaves every index by record position
  // wrong. Only a migration a decision named is moved, so its records are where to look.
  for (const std::string& id : cache.dirty) {
    const auto found = cache.records_by_id.find(id);
    if (found == cache.records_by_id.end()) continue;
    for (const std::size_t at : found->second) {
      if (at >= state.migrations.size() || state.migrations[at].id != id) {
        rebuild(cache, state, input);
        return true;
      }
    }
  }
  // Records added since (a migration's first step): indexed, and their migration made again.
  for (std::size_t at = cache.records_size; at < state.migrations.size(); ++at) {
    index_record(cache, state, input, at);
    cache.dirty.push_back(state.migrations[at].id);
  }
  cache.records_size = state.migrations.size();
  std::set<std::size_t> ranks;  // views to make again, in execution order
  for (const std::string& id : cache.dirty) {
    if (auto found = cache.records_by_id.find(id); found != cache.records_by_id.end()) {
      for (const std::size_t at : found->second) update_record(cache, state, input, at);
    }
    if (auto found = input.index->position.find(id); found != input.index->position.end()) {
      ranks.insert(cache.rank_of[found->second]);
    }
  }
  cache.dirty.clear();
  while (!ranks.empty()) {
    const std::size_t rank = *ranks.begin();
    ranks.erase(ranks.begin());
    if (!update_view(cache, state, input, rank)) continue;
    for (const std::size_t after : cache.dependents[input.index->order[rank]]) {
      ranks.insert(cache.rank_of[after]);
    }
  }
  return true;
}

}  // namespace bootstate::engine_detail

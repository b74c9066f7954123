// Items a running step reports (docs/DESIGN.md "Checks and resolutions": "A step may report new
// items while it runs"): JSON lines in the file named by $BOOTSTATE_ITEMS, in the item format of
// checks. The edge (stage2/command_step) reads the file, bounded and without following links;
// what the lines mean is decided here, purely:
//  - they join the attempt's items under the source "MIGRATION/STEP" ("MIGRATION/undo/STEP"
//    for an undo step), replacing what an earlier run of that step reported for the generation;
//  - an `error` item fails the step, as do unreadable lines or an unreadable file: a step that
//    meant to stop the boot must not let it through because its report was garbled;
//  - a forward step's items may offer the resolutions its migration declares (`resolutions` of
//    the migration in the plan); a line naming any other resolution is invalid (so is any
//    resolution in an undo step's report: a stale migration offers none). Without them the
//    operator's ways out are those of any failed step (`retry`, `decline`, `cancel`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/interfaces.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

struct StepItems {
  std::string source;               // the ItemRecord.check of the step's items
  std::vector<ItemRecord> records;  // what it reported (possibly none)
  std::string failure;              // non-empty: why the report fails the step
};

// The source name of `step`'s items ("MIGRATION/STEP", "MIGRATION/undo/STEP").
std::string step_item_source(std::string_view migration, std::string_view step, bool undo);

// What `outcome` (its reported_items / reported_items_error) says for the step `step` of
// `migration`, recorded for `generation` in `attempt`. `state` (before the step's end) tells
// whether an error item had a resolution chosen and applied: the failure then says that the
// resolution did not resolve it.
StepItems step_items(const Migration& migration, std::string_view step, bool undo,
                     const StepOutcome& outcome, const State& state, const std::string& generation,
                     std::uint64_t attempt, std::int64_t now_usec);

}  // namespace bootstate

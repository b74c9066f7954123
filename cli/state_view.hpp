// Read-only access to the state for status, preview and history: reading must never write, so
// a corrupt store is reported, not moved aside, by these commands.
#pragma once

#include <string>
#include <vector>

#include "cli/machine.hpp"
#include "core/state.hpp"

namespace bootstate::cli {

struct StateSnapshot {
  State state;
  std::vector<std::string> warnings;
  std::string esp;
};

Expected<StateSnapshot> read_state(const Machine& machine);

// "2026-11-25 13:01:02 UTC" for µs since the epoch; "-" for 0.
std::string format_time(std::int64_t usec);

}  // namespace bootstate::cli

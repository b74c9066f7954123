// Items of checks as `preview` and `status` show them (docs/DESIGN.md "Checks and
// resolutions"): grouped by severity, each with its resolutions and the exact command that
// chooses one, like `bootctl status` reads; and the `items[]` array of their --json output.
#pragma once

#include <string>
#include <vector>

#include "cli/json_writer.hpp"
#include "core/choices.hpp"

namespace bootstate::cli {

// "Errors (block the generation):" … one block per severity that has items; empty for none.
// `plan_generation`: see choose_command() (core/engine.hpp); `preview` passes its generation.
std::string items_text(const std::vector<ItemView>& items, std::string_view plan_generation = {});

// The array value of `items`: id, check, severity, message, resolutions[] (id, description),
// default, chosen (null when none), state (open|chosen|resolved|failed), generation.
void write_items_json(JsonWriter& json, const std::vector<ItemView>& items);

}  // namespace bootstate::cli

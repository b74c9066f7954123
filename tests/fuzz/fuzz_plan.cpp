// libFuzzer target: the plan parser (core/plan_parse.cpp and the rules it calls).
// Property: every migration of an accepted plan re-parses from its recorded definition (the
// text the state keeps, so that undo works after the generation is gone) to the same
// definition text and the same digest. A definition that reads differently when recorded than
// when planned would make a stale migration undo something else than what ran.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/plan.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto plan = bootstate::parse_plan(text, "fuzz/plan.json");
  if (!plan) return 0;
  for (const bootstate::Migration& migration : plan->migrations) {
    auto again = bootstate::parse_migration_definition(migration.definition_json);
    FUZZ_CHECK(again.has_value(), "a recorded definition does not re-parse");
    FUZZ_CHECK(again->definition_json == migration.definition_json,
               "a recorded definition re-parses to another text");
    FUZZ_CHECK(again->digest == migration.digest, "a recorded definition changes its digest");
    FUZZ_CHECK(again->id == migration.id, "a recorded definition changes its id");
  }
  return 0;
}

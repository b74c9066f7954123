#include "core/step_items.hpp"

#include <algorithm>

#include "core/check_items.hpp"
#include "core/choices.hpp"

namespace bootstate {

std::string step_item_source(std::string_view migration, std::string_view step, bool undo) {
  return fmt::format("{}/{}{}", migration, undo ? "undo/" : "", step);
}

StepItems step_items(const Migration& migration, std::string_view step, bool undo,
                     const StepOutcome& outcome, const State& state, const std::string& generation,
                     std::uint64_t attempt, std::int64_t now_usec) {
  StepItems result;
  result.source = step_item_source(migration.id, step, undo);
  if (!outcome.reported_items_error.empty()) {
    result.failure = "its $BOOTSTATE_ITEMS file could not be read: " + outcome.reported_items_error;
    return result;
  }
  if (outcome.reported_items.empty()) return result;
  if (outcome.reported_items.size() > kMaxCheckOutputBytes) {
    result.failure =
        fmt::format("it wrote more than {} bytes to $BOOTSTATE_ITEMS", kMaxCheckOutputBytes);
    return result;
  }
  // The step as a check that declares its migration's resolutions (none for an undo step): the
  // lines are validated exactly like a check's output, and any other resolution they name is
  // refused as undeclared.
  Check as_check;
  as_check.id = result.source;
  if (!undo) as_check.resolutions = migration.resolutions;
  auto items =
      parse_item_lines(as_check, outcome.reported_items,
                       fmt::format("{}migration \"{}\"", undo ? "the undo of " : "", migration.id));
  if (!items) {
    result.failure = "it wrote invalid items to $BOOTSTATE_ITEMS: " + items.error().message;
    return result;
  }
  result.records = item_records(*items, Plan{}, generation, attempt, now_usec);
  for (ItemRecord& record : result.records) {
    for (ItemResolutionRecord& resolution : record.resolutions) {
      resolution.description = as_check.find(resolution.id)->description;  // declared: parsed
    }
  }
  auto error = std::find_if(items->begin(), items->end(),
                            [](const CheckItem& item) { return item.severity == Severity::Error; });
  if (error != items->end()) {
    result.failure = fmt::format("it reported error \"{}\": {}", error->id, error->message);
    // Reported again after its chosen resolution ran: the resolution did not resolve it.
    const ChoiceRecord* choice = find_choice(state, generation, result.source, error->id);
    const MigrationRecord* applied =
        choice ? state.find(resolution_migration_id(result.source, choice->resolution)) : nullptr;
    if (applied != nullptr && applied->state == MigrationState::Applied) {
      result.failure = fmt::format(
          "it still reports error \"{}\" after its chosen resolution \"{}\" was applied: {}",
          error->id, choice->resolution, error->message);
    }
  }
  return result;
}

}  // namespace bootstate

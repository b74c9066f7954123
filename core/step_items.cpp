#include "core/step_items.hpp"

#include <algorithm>

#include "core/check_items.hpp"
#include "core/choices.hpp"

namespace bootstate {

std::string step_item_source(std::string_view migration, std::string_view step, bool undo) {
  return fmt::format("{}/{}{}", migration, undo ? "undo/" : "", step);
}

StepItems step_items(std::string_view migration, std::string_view step, bool undo,
                     const StepOutcome& outcome, const std::string& generation,
                     std::uint64_t attempt, std::int64_t now_usec) {
  StepItems result;
  result.source = step_item_source(migration, step, undo);
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
  // The step as a check that declares no resolutions: the lines are validated exactly like a
  // check's output, and any resolution they name is refused as undeclared.
  Check as_check;
  as_check.id = result.source;
  auto items = parse_item_lines(as_check, outcome.reported_items);
  if (!items) {
    result.failure = "it wrote invalid items to $BOOTSTATE_ITEMS: " + items.error().message;
    return result;
  }
  result.records = item_records(*items, Plan{}, generation, attempt, now_usec);
  auto error = std::find_if(items->begin(), items->end(),
                            [](const CheckItem& item) { return item.severity == Severity::Error; });
  if (error != items->end()) {
    result.failure = fmt::format("it reported error \"{}\": {}", error->id, error->message);
  }
  return result;
}

}  // namespace bootstate

// Items: what a check (or a running step, through $BOOTSTATE_ITEMS) reports, one JSON line
// each (docs/DESIGN.md "Checks and resolutions"):
//   {"id": "...", "severity": "error|warning|recommendation", "message": "...",
//    "resolutions": ["res-id", ...], "default": "res-id"}
// Parsing is pure and strict. A check whose run went wrong in any way - it could not start,
// exited non-zero, was killed, timed out, printed more than kMaxCheckOutputBytes, or printed a
// line that is not a valid item - yields one `error` item of its own ("check-failed"), never a
// pass: a broken check must not let a generation through that it was meant to stop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate {

enum class Severity : std::uint8_t { Error, Warning, Recommendation };
std::string_view to_string(Severity severity);
std::optional<Severity> parse_severity(std::string_view text);

// Bounds on what bootstate keeps of a check's output: the items end up in the state on the ESP.
inline constexpr std::size_t kMaxCheckOutputBytes = 256 * 1024;
inline constexpr std::size_t kMaxItemsPerCheck = 64;
inline constexpr std::size_t kMaxItemMessageBytes = 2048;

// The id of the error item a check gets when its run went wrong.
inline constexpr std::string_view kCheckFailedItem = "check-failed";

struct CheckItem {
  std::string id;
  std::string check;  // the check that reported it
  Severity severity = Severity::Error;
  std::string message;
  std::vector<std::string> resolutions;  // ids of the check's resolutions, in its order
  std::string default_resolution;        // one of `resolutions`, or empty
};

// The item lines of `check`'s output. Blank lines are skipped. Every line must be one JSON
// object with exactly the keys above (id and severity and message required; resolutions and
// default optional), valid UTF-8, an item id that is a valid id and unique in this output,
// resolutions the check declares (each once), a default among them. Errors (InvalidInput) say
// which line and what is wrong with it. `declared_by` names who declares the resolutions in
// that message (default: check "ID"; a step's items name its migration).
Expected<std::vector<CheckItem>> parse_item_lines(const Check& check, std::string_view text,
                                                  std::string_view declared_by = {});

// The items of one run of `check` whose process ended as `result` (stdout captured): the
// parsed items when it exited 0 and printed valid lines, else its own error item saying why.
std::vector<CheckItem> items_of_run(const Check& check, const ProcessResult& result);

// Where a check runs: the edge (stage2/check_runner) builds its process from it.
struct CheckRunContext {
  Phase phase = Phase::PostActivation;
  std::string generation;  // BOOTSTATE_GENERATION: the generation whose plan has the check
  std::string root = "/";  // BOOTSTATE_ROOT
  std::uint64_t attempt = 0;
};

class CheckRunner {
 public:
  virtual ~CheckRunner() = default;
  // Runs the check's argv (no shell) with its timeout, stdout captured and bounded.
  virtual ProcessResult run(const Check& check, const CheckRunContext& context) = 0;
};

// Runs the checks of `plan` (those of `phase` only, when given) in plan order; their items.
std::vector<CheckItem> run_checks(const Plan& plan, std::optional<Phase> phase, CheckRunner& runner,
                                  const CheckRunContext& context);

// An `error` item without a chosen resolution stops the generation.
bool blocks(const CheckItem& item, bool chosen);

}  // namespace bootstate

// What `bootstate status` shows, gathered once and rendered as text or JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/json_writer.hpp"
#include "cli/machine.hpp"
#include "core/choices.hpp"
#include "core/interfaces.hpp"
#include "core/state.hpp"

namespace bootstate::cli {

// The words in rows (kind, state, policy, readiness) are the enums' static names or literals:
// views, not copies (status holds a row per migration and step until it prints them).
struct StepRow {
  std::string id;
  Phase phase = Phase::PostActivation;
  std::string_view kind;
  std::string_view state;  // pending running done failed skipped
  std::uint32_t attempts = 0;
  int exit_status = -1;
  std::string message;
  std::int64_t started_usec = 0;
  std::int64_t finished_usec = 0;
  bool awaiting_reboot = false;
};

struct MigrationRow {
  std::string id;
  std::string description;
  std::string_view policy;
  std::string_view state;      // pending running applied failed declined undone
  std::string_view readiness;  // for plan migrations: runnable, waiting, needs accept, …
  std::string detail;          // why it waits, is blocked or failed
  bool in_plan = true;         // false: an older attempt applied it and the plan no longer has it
  bool kept = false;           // stale and kept (keep, firmware, declined undo)
  bool definition_changed = false;  // applied with another definition than the plan's
  std::vector<StepRow> steps;
  std::vector<StepRow> undo_steps;
  // Files a backup restore moved aside instead of destroying (DESIGN.md "Nothing lost"):
  // paths under <data>/displaced/ATTEMPT/ID/, at most kMaxDisplacedListed of them.
  std::vector<std::string> displaced;
  std::size_t displaced_total = 0;
};

inline constexpr std::size_t kMaxDisplacedListed = 100;

struct StatusModel {
  std::string booted_generation;
  // /run/current-system: differs from the booted generation after a live switch
  // (`nixos-rebuild switch|test`), whose plan status then shows; empty when unknown.
  std::string current_generation;
  std::string booted_entry;
  BootCounting counting = BootCounting::Impossible;
  int tries_left = -1;
  int tries_done = -1;
  std::string counting_why;
  // systemd-boot booted an entry whose name has no counter (LoaderEntrySelected): with
  // counting Off that is a blessed entry, worded like one blessed in this boot.
  bool entry_without_counter = false;
  std::string last_good;
  std::string last_good_entry;
  std::optional<Attempt> attempt;
  std::vector<MigrationRow> migrations;
  // Items checks and steps reported, of every generation the state remembers (a fallen-back
  // machine shows the items of the generation that failed), with their choices.
  std::vector<ItemView> items;
  std::vector<std::string> next;      // what happens next, in words
  std::vector<std::string> warnings;  // store warnings, a missing plan, …
  std::string esp;
};

Expected<StatusModel> gather_status(const Machine& machine);
// `colour`: ANSI colours for a terminal (status_command decides: isatty, NO_COLOR).
std::string render_status_text(const StatusModel& model, bool colour = false);
// One word for the booted entry's counting: blessed, on-trial, bad or not-counted.
std::string_view entry_state(const StatusModel& model);
// Into `json`, which may stream it (JsonWriter(FILE*)): the document is megabytes at 1,000
// migrations.
void render_status_json(const StatusModel& model, JsonWriter& json);

}  // namespace bootstate::cli

#include "cli/status_model.hpp"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>

#include <algorithm>

#include "bootloader/entry_name.hpp"
#include "bootloader/systemd_boot.hpp"
#include "cli/executors.hpp"
#include "cli/state_view.hpp"
#include "core/engine.hpp"
#include "core/phase_runner.hpp"
#include "core/preview.hpp"

namespace bootstate::cli {
namespace {

StepRow step_row(const Step& step, const StepRecord* record) {
  StepRow row;
  row.id = step.id;
  row.phase = step.phase;
  row.kind = to_string(step.kind);
  row.state = "pending";
  if (record != nullptr) {
    row.state = to_string(record->state);
    row.attempts = record->attempts;
    row.exit_status = record->exit_status;
    row.message = record->message;
    row.started_usec = record->started_usec;
    row.finished_usec = record->finished_usec;
    row.awaiting_reboot = record->awaiting_reboot;
  }
  return row;
}

const StepRecord* find(const std::vector<StepRecord>& records, std::string_view id) {
  for (const StepRecord& record : records) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

MigrationRow migration_row(const Migration& migration, const MigrationRecord* record) {
  MigrationRow row;
  row.id = migration.id;
  row.description = migration.description;
  row.policy = to_string(migration.policy);
  row.state = "pending";
  if (record != nullptr) {
    row.state = to_string(record->state);
    row.detail = record->message;
  }
  // Exactly as many rows as steps: grown one by one, a migration of 3 steps held room for 4
  // (status keeps every row until it is printed: 170 KB at 1,000 migrations).
  row.steps.reserve(migration.steps.size());
  for (const Step& step : migration.steps) {
    row.steps.push_back(step_row(step, record ? find(record->steps, step.id) : nullptr));
  }
  if (record != nullptr) {
    for (const Step& step : migration.undo) {
      if (const StepRecord* undo = find(record->undo_steps, step.id)) {
        row.undo_steps.push_back(step_row(step, undo));
      }
    }
  }
  return row;
}

std::string or_unknown(const std::string& generation) {
  return generation.empty() ? "(unknown)" : generation;
}

// The quick answer for the common case, before simulating boots with preview_plan: an attempt
// of this plan is complete and the engine sees no work.
bool nothing_pending(const State& state, const Plan& plan) {
  if (!state.attempt || state.attempt->state != AttemptState::Complete ||
      state.attempt->generation != plan.generation || state.attempt->plan_digest != plan.digest) {
    return false;
  }
  return !work_remains(state, plan, recorded_definitions(state, plan));
}

// The generation whose boot undoes what a cancelled attempt applied, in words.
std::string undoing_generation(const State& state) {
  return state.last_good_generation.empty() ? "a generation without these migrations"
                                            : state.last_good_generation;
}

// The operator cancelled the attempt of the shown plan (docs/DESIGN.md "Cancel"): none of its
// migrations runs any more, whatever plan_view would say (it reads the records, which a cancel
// leaves as they were). A row that would have run, or that the cancelled attempt touched, says
// so and what undoes its effect; one an earlier attempt applied stays as it reads.
// `live_switch`: the attempt is the current system's, and `bootstate cancel` undid at once.
void mark_cancelled(MigrationRow& row, const MigrationRecord* record, const State& state,
                    bool live_switch) {
  const bool touched_by_attempt =
      record != nullptr && record->touched() && record->attempt == state.attempt->number;
  const bool would_run = row.readiness == "runnable" || row.readiness == "waiting";
  if (!touched_by_attempt && !would_run) return;
  row.readiness = "cancelled";
  if (!touched_by_attempt) {
    row.detail = "will not run: the operator cancelled the attempt";
  } else if (row.state == "undone") {
    row.detail = live_switch ? "undone by `bootstate cancel`: the operator cancelled the attempt"
                             : "undone: the operator cancelled the attempt";
  } else if (live_switch) {
    row.detail = fmt::format(
        "{} in the cancelled attempt, and not undone yet: `bootstate cancel` again undoes it{}",
        row.state, row.detail.empty() ? "" : " (" + row.detail + ")");
  } else {
    row.detail = fmt::format(
        "{} in the cancelled attempt: booting {} undoes it (unless that generation has it too)",
        row.state, undoing_generation(state));
  }
}

// "Next:" of a cancelled attempt; false when the attempt is of neither the booted nor the
// current generation (then the booted plan's own preview follows).
bool add_cancelled_next(StatusModel& model, const State& state, bool switched) {
  const Attempt& attempt = *state.attempt;
  const std::string by_whom = fmt::format("attempt #{} for {} was cancelled by the operator",
                                          attempt.number, attempt.generation);
  if (switched && attempt.generation == model.current_generation) {
    const bool undone =
        std::none_of(model.migrations.begin(), model.migrations.end(), [](const MigrationRow& row) {
          return row.readiness == "cancelled" && row.state != "pending" &&
                 row.state != "declined" && row.state != "undone";
        });
    model.next.push_back(fmt::format(
        "the live switch's {}{}: `nixos-rebuild switch --rollback` goes back to the booted "
        "generation {}",
        by_whom,
        undone ? " and what it applied was undone by `bootstate cancel`"
               : "; what it applied is not undone yet: `bootstate cancel` again undoes it",
        or_unknown(model.booted_generation)));
    return true;
  }
  if (attempt.generation != model.booted_generation) {
    model.next.push_back(
        fmt::format("{}: booting {} undoes what it applied", by_whom, undoing_generation(state)));
    return false;
  }
  model.next.push_back(by_whom + ": nothing more of it runs");
  if (state.last_good_generation.empty() || state.last_good_generation == attempt.generation) {
    model.next.push_back(
        "no last good generation is known: what the attempt applied stays until a generation "
        "without those migrations boots");
  } else {
    model.next.push_back(fmt::format(
        "the next boot starts the last good generation {} (`bootstate cancel` arranged it; "
        "otherwise pick it from the boot menu): booting {} undoes what the attempt applied",
        state.last_good_generation, state.last_good_generation));
  }
  return true;
}

void add_next(StatusModel& model, const State& state, const Plan* plan) {
  const bool switched =
      !model.current_generation.empty() && model.current_generation != model.booted_generation;
  if (attempt_cancelled(state) && add_cancelled_next(model, state, switched)) return;
  if (switched && state.attempt && state.attempt->state == AttemptState::Failed &&
      state.attempt->generation == model.current_generation) {
    // docs/DESIGN.md "A live switch": what the failed switch did was undone; going back to the
    // booted generation is the operator's move.
    model.next.push_back(fmt::format(
        "the live switch to {} failed and its failed migration was undone: `nixos-rebuild "
        "switch --rollback` goes back to the booted generation {}",
        model.current_generation, or_unknown(model.booted_generation)));
    return;
  }
  if (state.attempt && state.attempt->state == AttemptState::Failed) {
    if (state.attempt->generation == state.last_good_generation ||
        state.last_good_generation.empty()) {
      model.next.push_back(
          "the attempt failed and there is no other generation to fall back to: "
          "fix the cause, then `bootstate retry ID`");
    } else if (state.attempt->generation == model.booted_generation) {
      model.next.push_back("the next boot falls back to the last good generation " +
                           state.last_good_generation);
    }
  }
  if (plan == nullptr) return;
  if (nothing_pending(state, *plan)) {
    model.next.push_back("nothing pending");
    return;
  }
  Executors executors;
  PreviewReport report = preview_plan(state, *plan, executors.by_kind(), "/");
  int boot = 0;
  for (const PreviewAction& action : report.actions) {
    if (action.boot != boot) {
      boot = action.boot;
      model.next.push_back(fmt::format("boot {}:", boot));
    }
    model.next.push_back(fmt::format("  {} {} {}{}{}", to_string(action.phase), action.action,
                                     action.migration, action.step.empty() ? "" : "/",
                                     action.step));
  }
  for (const std::string& blocker : report.blockers) model.next.push_back("blocked: " + blocker);
  for (const std::string& note : report.notes) model.next.push_back("note: " + note);
  if (report.actions.empty() && report.blockers.empty()) model.next.push_back("nothing pending");
}

// What restores displaced, found on disk (read only): every non-directory (and empty
// directory) below <data>/displaced/ATTEMPT/ID, for the migration ID's row. Symlinks are
// listed, not followed.
std::vector<std::string>* displaced_list;
std::size_t* displaced_count;
int list_displaced(const char* path, const struct stat* status, int type, struct FTW*) {
  if (type == FTW_D) {
    // Only an empty directory is an item by itself; others show through their contents.
    DIR* directory = ::opendir(path);
    bool empty = true;
    if (directory != nullptr) {
      while (dirent* item = ::readdir(directory)) {
        std::string_view name = item->d_name;
        if (name != "." && name != "..") empty = false;
      }
      ::closedir(directory);
    }
    if (!empty) return 0;
  }
  (void)status;
  if (++*displaced_count <= kMaxDisplacedListed) displaced_list->push_back(path);
  return 0;
}

void add_displaced(StatusModel& model, const std::string& data_dir) {
  const std::string base = data_dir + "/displaced";
  DIR* attempts = ::opendir(base.c_str());
  if (attempts == nullptr) return;
  std::vector<std::string> numbers;
  while (dirent* item = ::readdir(attempts)) {
    std::string_view name = item->d_name;
    if (name != "." && name != "..") numbers.emplace_back(name);
  }
  ::closedir(attempts);
  std::sort(numbers.begin(), numbers.end());
  for (MigrationRow& row : model.migrations) {
    for (const std::string& attempt : numbers) {
      const std::string root = fmt::format("{}/{}/{}", base, attempt, row.id);
      struct stat status {};
      if (::lstat(root.c_str(), &status) != 0) continue;
      displaced_list = &row.displaced;
      displaced_count = &row.displaced_total;
      ::nftw(root.c_str(), list_displaced, 16, FTW_PHYS);
    }
  }
}

// Status reads a migration's recorded definition only when its plan no longer has it (a stale
// migration is shown from its record: recorded_definitions, and below); the others are let go
// before the rows are built, which take their memory (340 KB at 1,000 migrations).
void forget_definitions_in(const Plan& plan, State& state) {
  for (MigrationRecord& record : state.migrations) {
    if (plan.find(record.id) != nullptr) std::string().swap(record.definition_json);
  }
}

}  // namespace

Expected<StatusModel> gather_status(const Machine& machine) {
  // The plan is read before the state: its file, its document and their transients are let go
  // before the State is built, which then takes their memory instead of new pages (at 1,000
  // migrations about 1 MB: 260 page faults, docs/PERFORMANCE.md "Session 13").
  auto facts = machine.boot_facts();
  std::optional<Expected<Plan>> booted_plan;
  // Shown, never run: its definition texts are only digested (plan.hpp DefinitionTexts).
  if (facts) booted_plan = machine.booted_plan(std::nullopt, *facts, DefinitionTexts::Drop);

  StatusModel model;
  auto snapshot = read_state(machine);
  if (!snapshot) return snapshot.error();
  const State& state = snapshot->state;
  model.warnings = snapshot->warnings;
  model.esp = snapshot->esp;
  model.last_good = state.last_good_generation;
  model.last_good_entry = state.last_good_entry;
  model.attempt = state.attempt;

  std::optional<Plan> plan;
  if (facts) {
    model.booted_generation = facts->booted_generation;
    model.current_generation = facts->current_generation;
    if (*booted_plan) {
      plan = std::move(**booted_plan);
      // The resolutions chosen for this generation are migrations of its plan (as at `run`).
      if (auto expanded = plan_with_choices(*plan, state, facts->target_generation())) {
        plan = std::move(*expanded);
      }
    } else {
      model.warnings.push_back(booted_plan->error().message);
    }
  } else {
    model.warnings.push_back(facts.error().message);
  }
  if (plan) forget_definitions_in(*plan, snapshot->state);
  auto boot_partition = machine.boot_partition(snapshot->esp);
  if (!boot_partition) model.warnings.push_back(boot_partition.error().message);
  SystemdBoot loader(machine.root(), snapshot->esp, 3, model.booted_generation,
                     boot_partition ? *boot_partition : std::string());
  if (auto entry = loader.booted_entry(); entry) {
    model.booted_entry = entry->id;
    model.counting = entry->counting;
    model.tries_left = entry->tries_left;
    model.tries_done = entry->tries_done;
    model.counting_why = entry->why;
  } else {
    model.counting_why = entry.error().message;
  }
  if (model.counting == BootCounting::Off) {
    auto variables = loader.loader_status();
    if (variables && variables->entry_selected) {
      auto name = parse_entry_name(*variables->entry_selected);
      model.entry_without_counter = name && !name->counter;
    }
  }

  model.migrations.reserve((plan ? plan->migrations.size() : 0) + state.migrations.size());
  if (plan) {
    const bool cancelled =
        attempt_cancelled(state) && state.attempt->generation == plan->generation;
    const bool live_switch = facts && facts->switch_attempt() && state.attempt &&
                             state.attempt->generation == facts->current_generation;
    for (const MigrationView& view : plan_view(*plan, state)) {
      MigrationRow row = migration_row(*view.migration, view.record);
      row.readiness = to_string(view.readiness);
      if (!view.detail.empty()) row.detail = view.detail;
      if (view.readiness == Readiness::Declined) row.state = "declined";
      row.definition_changed = view.record != nullptr && view.record->touched() &&
                               view.record->digest != view.migration->digest;
      if (cancelled) mark_cancelled(row, view.record, state, live_switch);
      model.migrations.push_back(std::move(row));
    }
  }
  auto recorded = plan ? recorded_definitions(state, *plan) : std::map<std::string, Migration>{};
  for (const MigrationRecord& record : state.migrations) {
    if (plan && plan->find(record.id) != nullptr) continue;
    auto definition = recorded.find(record.id);
    if (definition == recorded.end()) {
      auto parsed = parse_migration_definition(record.definition_json);
      if (!parsed) continue;
      definition = recorded.emplace(record.id, std::move(*parsed)).first;
    }
    MigrationRow row = migration_row(definition->second, &record);
    row.in_plan = false;
    row.kept =
        record.state != MigrationState::Undone &&
        (definition->second.kept_when_stale() || record.decision == OperatorDecision::Declined);
    row.readiness = row.kept ? "kept" : "stale";
    model.migrations.push_back(std::move(row));
  }
  add_displaced(model, machine.data_dir(Phase::PostActivation));
  model.items = item_views(state.items, state);
  add_next(model, state, plan ? &*plan : nullptr);
  return model;
}

}  // namespace bootstate::cli

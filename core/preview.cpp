#include "core/preview.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "core/phase_runner.hpp"

namespace bootstate {
namespace {

constexpr int kMaxSimulatedBoots = 32;

// A boot loader that boots the previewed generation with boot counting on.
class SimulatedLoader final : public BootLoader {
 public:
  Expected<BootedEntry> booted_entry() override {
    BootedEntry entry;
    entry.id = "previewed";
    entry.counting = BootCounting::Active;
    entry.tries_left = 2;
    entry.tries_done = 1;
    return entry;
  }
  Expected<std::optional<std::string>> entry_for_generation(std::string_view) override {
    return std::optional<std::string>("previous");
  }
  Expected<void> mark_bad() override { return {}; }
  Expected<void> rearm() override { return {}; }
  Expected<void> mark_good() override { return {}; }
  Expected<void> set_one_shot(std::string_view) override { return {}; }
};

struct Recorder {
  PreviewReport* report = nullptr;
  int boot = 1;
  const std::map<StepKind, StepExecutor*>* executors = nullptr;
};

// Succeeds at everything and records what would happen, with the real executor's description.
class SimulatedExecutor final : public StepExecutor {
 public:
  explicit SimulatedExecutor(Recorder& recorder) : recorder_(recorder) {}

  StepOutcome run(const StepContext& context) override {
    record(context, is_undo(context) ? "undo" : "run");
    return success();
  }
  CheckResult check(const StepContext&) override { return CheckResult::NotApplied; }
  StepOutcome revert(const StepContext& context) override {
    record(context, "revert");
    return success();
  }
  StepPreview describe(const StepContext&) override { return {}; }

 private:
  static bool is_undo(const StepContext& context) {
    for (const Step& step : context.migration->undo) {
      if (&step == context.step) return true;
    }
    return false;
  }
  static StepOutcome success() {
    StepOutcome outcome;
    outcome.ok = true;
    outcome.exit_status = 0;
    outcome.message = "previewed";
    return outcome;
  }
  void record(const StepContext& context, std::string action) {
    PreviewAction entry;
    entry.boot = recorder_.boot;
    entry.phase = context.phase;
    entry.migration = context.migration->id;
    entry.step = context.step->id;
    entry.action = std::move(action);
    entry.reboot_after = context.step->reboot;
    auto found = recorder_.executors->find(context.step->kind);
    if (found != recorder_.executors->end() && found->second != nullptr) {
      entry.detail = found->second->describe(context);
    } else {
      entry.detail.blocker =
          fmt::format("{} steps are not available in this build", to_string(context.step->kind));
    }
    const std::string& text = context.step->preview;
    if (!text.empty() && std::find(entry.detail.lines.begin(), entry.detail.lines.end(), text) ==
                             entry.detail.lines.end()) {
      entry.detail.lines.insert(entry.detail.lines.begin(), text);
    }
    entry.irreversible = entry.detail.irreversible || context.step->kind == StepKind::Firmware;
    if (!entry.detail.blocker.empty()) {
      recorder_.report->blockers.push_back(fmt::format(
          "migration \"{}\" step \"{}\": {}", entry.migration, entry.step, entry.detail.blocker));
    }
    if (context.phase != Phase::PostActivation) recorder_.report->initrd_work = true;
    recorder_.report->actions.push_back(std::move(entry));
  }
  Recorder& recorder_;
};

class SimulatedBackups final : public BackupStore {
 public:
  SimulatedBackups(Recorder& recorder, Phase& phase) : recorder_(recorder), phase_(phase) {}
  Expected<void> snapshot(std::string_view id, const std::vector<std::string>& paths) override {
    add(id, "backup", fmt::format("snapshot {} path(s) before the first step", paths.size()));
    return {};
  }
  Expected<std::vector<std::string>> restore(std::string_view id, std::uint64_t) override {
    add(id, "restore-backup",
        "restore the snapshot taken before it ran; files written since then are displaced, kept "
        "under /var/lib/bootstate/displaced/ATTEMPT/" +
            std::string(id) + "/");
    return std::vector<std::string>{};
  }
  Expected<void> discard(std::string_view) override { return {}; }

 private:
  void add(std::string_view id, std::string action, std::string line) {
    PreviewAction entry;
    entry.boot = recorder_.boot;
    entry.phase = phase_;
    entry.migration = std::string(id);
    entry.action = std::move(action);
    entry.detail.lines.push_back(std::move(line));
    if (phase_ != Phase::PostActivation) recorder_.report->initrd_work = true;
    recorder_.report->actions.push_back(std::move(entry));
  }
  Recorder& recorder_;
  Phase& phase_;
};

// The checks ran for real before the simulation (their items are in the report): in the
// simulated boots they report nothing, so the boots show what the migrations would do.
class RanAlreadyChecks final : public CheckRunner {
 public:
  ProcessResult run(const Check&, const CheckRunContext&) override {
    ProcessResult result;
    result.started = true;
    result.exit_status = 0;
    return result;
  }
};

void add_notes(PreviewReport& report, const State& state, const Plan& plan) {
  for (const MigrationView& view : plan_view(plan, state)) {
    const std::string& id = view.migration->id;
    switch (view.readiness) {
      case Readiness::NeedsAccept:
        report.notes.push_back(
            fmt::format("\"{}\" is optional: it runs after `bootstate accept {}`", id, id));
        break;
      case Readiness::Declined:
        report.notes.push_back(fmt::format("\"{}\" was declined and will not run", id));
        break;
      case Readiness::Failed:
        report.notes.push_back(
            fmt::format("\"{}\" failed earlier ({}); `bootstate retry {}` "
                        "runs it again",
                        id, view.detail, id));
        break;
      case Readiness::Blocked:
        // A required one (or a changed definition) is also a blocker: the simulated boot below
        // fails the attempt on it, in the engine's own words.
        report.notes.push_back(fmt::format("\"{}\" cannot run: {}", id, view.detail));
        break;
      case Readiness::Held:
        report.notes.push_back(fmt::format("\"{}\" is held: {}", id, view.detail));
        break;
      default:
        break;
    }
  }
  auto recorded = recorded_definitions(state, plan);
  for (const StaleView& view : stale_view(state, plan, recorded)) {
    if (view.kept) {
      report.notes.push_back(fmt::format("\"{}\" is not in this plan; its effect is kept ({})",
                                         view.record->id,
                                         view.definition && view.definition->has_firmware_step()
                                             ? "firmware is machine state and is never undone"
                                             : "keep"));
    }
  }
}

// The checks of `plan` that a boot of it runs only after undoing one of their resolutions (a
// recorded, not kept migration "CHECK.RESOLUTION" the plan does not have): what they report
// now is about the state that undo changes (the phase runner runs checks after undo work).
std::set<std::string> checks_after_undo(const State& state, const Plan& plan) {
  std::set<std::string> checks;
  auto recorded = recorded_definitions(state, plan);
  for (const StaleView& view : stale_view(state, plan, recorded)) {
    if (view.kept || !view.pending) continue;
    for (const Check& check : plan.checks) {
      if (view.record->id.starts_with(check.id + ".")) checks.insert(check.id);
    }
  }
  return checks;
}

}  // namespace

PreviewReport preview_plan(const State& state, const Plan& booted_plan,
                           const std::map<StepKind, StepExecutor*>& executors,
                           const std::string& root, const std::vector<CheckItem>& items) {
  PreviewReport report;
  report.generation = booted_plan.generation;
  std::optional<Plan> expanded;
  if (booted_plan.offers_resolutions()) {
    expanded = plan_with_choices(booted_plan, state, booted_plan.generation);
  }
  if (!booted_plan.checks.empty()) {
    report.items =
        item_views(item_records(items, booted_plan, booted_plan.generation, 0, 0), state);
    const std::set<std::string> rerun =
        checks_after_undo(state, expanded ? *expanded : booted_plan);
    for (const ItemView& view : report.items) {
      if (!view.blocker) continue;
      if (rerun.contains(view.item.check)) {
        report.notes.push_back(fmt::format(
            "check \"{}\" reports error \"{}\" on the machine as it is, but booting this "
            "generation first undoes a resolution of that check, and the check runs again after "
            "it",
            view.item.check, view.item.id));
        continue;
      }
      // A previewed generation's items are in no state: `choose` needs its plan named.
      report.blockers.push_back(blocker_text(view.item, report.generation));
    }
  }
  if (booted_plan.has_migration_resolutions && !state.items.empty()) {
    // What this generation's steps reported when they last ran, with the resolutions their
    // migrations offer: shown (and choosable) like a check's items, not predicted again.
    for (ItemView& view : item_views(state.items, state)) {
      if (view.item.generation != booted_plan.generation ||
          source_migration(view.item.check).empty()) {
        continue;
      }
      report.items.push_back(std::move(view));
    }
  }
  const Plan& plan = expanded ? *expanded : booted_plan;
  add_notes(report, state, plan);

  MemoryState store(state);
  Recorder recorder{&report, 1, &executors};
  Phase phase = Phase::InitrdPreMount;
  SimulatedLoader loader;
  SimulatedExecutor executor(recorder);
  SimulatedBackups backups(recorder, phase);
  PhaseEffects effects;
  effects.store = &store;
  effects.boot_loader = &loader;
  effects.backups = &backups;
  effects.executors = {{StepKind::Command, &executor},
                       {StepKind::Storage, &executor},
                       {StepKind::Firmware, &executor}};
  effects.root = root;
  RanAlreadyChecks checks;
  effects.checks = &checks;

  for (int boot = 1; boot <= kMaxSimulatedBoots; ++boot) {
    recorder.boot = boot;
    bool rebooting = false;
    for (Phase each : kAllPhases) {
      phase = each;
      BootFacts facts{fmt::format("preview-boot-{}", boot), plan.generation, 0};
      auto result = run_phase(each, plan, facts, effects);
      if (!result) {
        report.blockers.push_back(result.error().message);
        return report;
      }
      if (result->exit == PhaseExit::Failed) {
        report.blockers.push_back(result->message);
        report.boots = boot;
        return report;
      }
      if (result->exit == PhaseExit::RebootRequired) {
        rebooting = true;
        break;
      }
    }
    if (!rebooting) {
      report.boots = report.actions.empty() ? 0 : boot;
      return report;
    }
  }
  report.blockers.push_back(
      fmt::format("the plan does not complete within {} boots", kMaxSimulatedBoots));
  return report;
}

}  // namespace bootstate

#include "core/phase_runner.hpp"

#include <algorithm>
#include <chrono>

#include "core/choices.hpp"
#include "core/decision_cache.hpp"
#include "core/parallel_steps.hpp"
#include "core/store_idle.hpp"

namespace bootstate {
namespace {

// Fails the steps of a kind this build cannot run, instead of pretending they worked.
class UnavailableExecutor final : public StepExecutor {
 public:
  StepOutcome run(const StepContext& context) override { return failure(context); }
  CheckResult check(const StepContext&) override { return CheckResult::Unknown; }
  StepOutcome revert(const StepContext& context) override { return failure(context); }
  StepPreview describe(const StepContext& context) override {
    StepPreview preview;
    preview.blocker = failure(context).message;
    return preview;
  }

 private:
  static StepOutcome failure(const StepContext& context) {
    StepOutcome outcome;
    outcome.message =
        fmt::format("{} steps are not available in this build", to_string(context.step->kind));
    return outcome;
  }
};

// Each change reconcile made reaches the journal under its own id.
Event event_for(AttemptChange change) {
  switch (change) {
    case AttemptChange::Started:
    case AttemptChange::Reopened:
    case AttemptChange::Reintroduced:
      return Event::AttemptStarted;
    case AttemptChange::Abandoned:
      return Event::AttemptAbandoned;
    case AttemptChange::Failed:
      return Event::AttemptFailed;
    case AttemptChange::StoreLost:
      return Event::StoreWarning;
  }
  return Event::StoreWarning;
}

bool is_fallback(BootActionKind action) {
  return action == BootActionKind::MarkBad || action == BootActionKind::OneShotToLastGood;
}

class Runner {
 public:
  Runner(Phase phase, const Plan& plan, const BootFacts& facts, PhaseEffects& effects)
      : effects_(effects) {
    input_.plan = &plan;
    input_.facts = facts;
    input_.phase = phase;
  }
  // The last committed (or loaded) state goes back to the access once, not once per commit
  // (MemoryState: preview's simulated commits copied the whole State each, issue #17).
  ~Runner() {
    if (loaded_) effects_.store->adopt(std::move(state_));
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Expected<PhaseResult> run() {
    auto loaded = effects_.store->load();
    if (!loaded) return loaded.error();
    for (const std::string& warning : loaded->warnings) emit(Event::StoreWarning, warning);
    state_ = std::move(loaded->state);
    loaded_ = true;
    input_.store_lost = loaded->lost;
    // The resolutions the operator chose for this generation are migrations of its plan. A plan
    // without checks or migration resolutions has none, and this costs nothing.
    if (input_.plan->offers_resolutions()) {
      expanded_ = plan_with_choices(*input_.plan, state_, input_.facts.target_generation());
      if (expanded_) input_.plan = &*expanded_;
    }
    index_ = index_plan(*input_.plan);  // once per run, not at every decision (issue #17)
    input_.index = &index_;
    recorded_ = recorded_definitions(state_, *input_.plan);
    input_.recorded = &recorded_;
    input_.cache = &cache_;  // views carried across decisions (core/decision_cache.hpp)
    auto entry = effects_.boot_loader->booted_entry();
    if (entry) {
      input_.entry = *entry;
    } else {
      // No booted entry means no boot counting to rely on; say why rather than act unknowing.
      input_.entry.counting = BootCounting::Impossible;
      input_.entry.why = "the booted entry is unknown: " + entry.error().message;
      emit(Event::StoreWarning, input_.entry.why);
    }

    auto reconciled = reconcile(state_, input_);
    if (!reconciled) return reconciled.error();
    for (const auto& [change, text] : reconciled->events) emit(event_for(change), text);
    if (reconciled->changed) BOOTSTATE_TRY(commit(std::move(reconciled->state)));
    cache_.forget();

    // Each round commits at least once or ends, and a step is never run twice for one
    // decision; the bound only turns a bug into an error instead of a hang.
    // The phase's checks run once the undo work of the phase is done, before its first forward
    // action: they judge the machine as this generation's migrations will find it. Booting an
    // older generation undoes a newer one's resolution first (PostgreSQL: the dump back to the
    // older major), and its check, run before that, would report the very state the undo is
    // about to remove, and stop the boot that removes it.
    bool checks_ran = false;
    for (int round = 0; round < 100000; ++round) {
      auto decision = next(state_, input_);
      if (!decision) return decision.error();
      const bool forward = decision->kind != ActionKind::None &&
                           decision->kind != ActionKind::Bookkeeping && !decision->undo;
      if (!checks_ran && (forward || decision->kind == ActionKind::None)) {
        checks_ran = true;
        auto committed = run_checks_of_phase();
        if (!committed) return committed.error();
        if (*committed) continue;  // the checks changed the state (items, a failure): decide again
      }
      if (decision->kind == ActionKind::None) break;
      if (effects_.jobs > 1 && decision->kind == ActionKind::RunStep && !decision->undo &&
          input_.plan->migrations.size() > 1) {
        // A plain forward step: with others independent of it, they run together.
        auto batch = startable_steps(state_, input_, {}, effects_.jobs);
        if (batch.size() > 1 && same_step(batch, *decision)) {
          BOOTSTATE_TRY(run_parallel(std::move(batch)));
          cache_.forget();  // the batch's steps were not decisions of next()
          continue;
        }
      }
      BOOTSTATE_TRY(act(*decision));
    }

    auto finished = finish(state_, input_);
    if (!finished) return finished.error();
    PhaseEnd& end = *finished;
    if (end.changed) BOOTSTATE_TRY(commit(end.state));
    const bool fallback = apply_boot_actions(end);
    if (end.exit == PhaseExit::Failed) emit(Event::AttemptFailed, end.message);
    if (end.exit == PhaseExit::RebootRequired) emit(Event::RebootRequired, end.message);
    if (end.attempt_completed) emit(Event::AttemptComplete, end.message);
    const bool reboot = (end.exit == PhaseExit::RebootRequired && end.reboot_helps) ||
                        (end.exit == PhaseExit::Failed && fallback);
    PhaseResult result{end.exit, end.message, wrote_, fallback, reboot};
    // What the idle certificate needs to know (core/store_idle.hpp): asked only when this run
    // ended with nothing done and nothing left, on the state as committed.
    result.settled = end.exit == PhaseExit::Ok && end.boot_actions.empty() &&
                     settled_in_every_phase(state_, input_);
    return result;
  }

 private:
  bool loaded_ = false;  // state_ holds a loaded or committed state
  Expected<void> commit(State state) {
    BOOTSTATE_TRY(effects_.store->commit(state));
    state_ = std::move(state);
    wrote_ = true;
    return {};
  }

  // The checks of this phase, after its undo work and before its migrations, while the attempt
  // is in progress (a complete or failed attempt runs nothing, so idle boots run no check).
  // Whether they committed a change.
  Expected<bool> run_checks_of_phase() {
    std::vector<std::string> ran;
    for (const Check& check : input_.plan->checks) {
      if (check.phase == input_.phase) ran.push_back(check.id);
    }
    if (ran.empty() || !state_.attempt || state_.attempt->state != AttemptState::InProgress) {
      return false;
    }
    std::vector<CheckItem> items;
    if (effects_.checks != nullptr) {
      CheckRunContext context{input_.phase, input_.facts.target_generation(), effects_.root,
                              state_.attempt->number};
      if (effects_.events) effects_.events->status("running the checks");
      items = run_checks(*input_.plan, input_.phase, *effects_.checks, context);
    } else {
      for (const Check& check : input_.plan->checks) {
        if (check.phase != input_.phase) continue;
        ProcessResult none;
        none.message = "checks cannot run in this build";
        for (CheckItem& item : items_of_run(check, none)) items.push_back(std::move(item));
      }
    }
    for (const CheckItem& item : items) {
      emit(Event::ItemReported, fmt::format("check \"{}\": {} \"{}\": {}", item.check,
                                            to_string(item.severity), item.id, item.message));
    }
    auto outcome = checks_ran(state_, *input_.plan, ran, items, input_.facts);
    if (!outcome) return outcome.error();
    if (!outcome->changed) return false;
    BOOTSTATE_TRY(commit(std::move(outcome->state)));
    cache_.forget();
    return true;
  }

  // The engine's record functions take the state by value: the runner moves state_ into them
  // instead of copying it (a copy per commit made `status` quadratic in the number of
  // migrations, issue #17). After an error the run ends, and state_ is not used again.
  Expected<void> commit(Expected<State> state) {
    if (!state) return state.error();
    return commit(std::move(*state));
  }

  void emit(Event event, std::string_view text) {
    if (effects_.events != nullptr) effects_.events->event(event, text);
  }

  StepExecutor& executor_for(const Step& step) {
    auto found = effects_.executors.find(step.kind);
    if (found == effects_.executors.end() || found->second == nullptr) return unavailable_;
    return *found->second;
  }

  Expected<StepContext> context_for(const Decision& decision) {
    StepContext context;
    context.phase = input_.phase;
    context.migration = decision.migration;
    context.step = decision.step;
    context.attempt = state_.attempt ? state_.attempt->number : 0;
    context.generation = input_.facts.target_generation();
    context.root = effects_.root;
    if (const MigrationRecord* record = state_.find(decision.migration->id)) {
      // A revert undoes a forward step: it needs that step's record (its undo_record says what
      // to put back), not the record of its own progress (issue #13 item 2).
      const bool own_progress = decision.undo && decision.kind != ActionKind::RevertStep;
      const auto& records = own_progress ? record->undo_steps : record->steps;
      for (const StepRecord& step : records) {
        if (step.id == decision.step->id) context.record = &step;
      }
    }
    if (effects_.paths) {
      auto paths = effects_.paths(*decision.migration, *decision.step, context.attempt);
      if (!paths) return paths.error();
      context.work_dir = paths->work_dir;
      context.log_path = paths->log_path;
    }
    return context;
  }

  Expected<void> act(Decision decision) {
    switch (decision.kind) {
      case ActionKind::None:
        return {};
      case ActionKind::Bookkeeping:
        return commit(std::move(*decision.commit));
      case ActionKind::TakeBackup:
        return take_backup(decision);
      case ActionKind::RestoreBackup:
        return restore_backup(decision);
      case ActionKind::CheckStep: {
        auto context = context_for(decision);
        if (!context) return context.error();
        StepExecutor& executor = executor_for(*decision.step);
        CheckResult result = executor.check(*context);
        // Not applied: the engine makes it pending again, and its next decision runs it.
        if (result != CheckResult::Applied) {
          return commit(check_finished(std::move(state_), decision, result, input_.facts));
        }
        BOOTSTATE_TRY(commit(check_finished(std::move(state_), decision, result, input_.facts,
                                            executor.interrupted_report(*context))));
        const StepRecord* step = step_in(state_, decision);
        if (step != nullptr && step->state == StepState::Failed) {
          emit(Event::StepFailed, describe(decision, step->message));
        } else {
          emit(Event::StepDone, describe(decision, "its check says it is already applied"));
        }
        return {};
      }
      case ActionKind::RunStep:
      case ActionKind::RevertStep:
        return run_step(decision);
    }
    return {};
  }

  Expected<void> run_step(const Decision& decision) {
    BOOTSTATE_TRY(commit(step_started(std::move(state_), decision, input_.facts)));
    begin_step(decision);
    auto context = context_for(decision);
    StepOutcome outcome;
    if (!context) {
      outcome.message = context.error().message;
    } else {
      StepExecutor& executor = executor_for(*decision.step);
      outcome = decision.kind == ActionKind::RevertStep ? executor.revert(*context)
                                                        : executor.run(*context);
    }
    return end_step(decision, outcome);
  }

  static bool same_step(const std::vector<Decision>& batch, const Decision& decision) {
    return std::any_of(batch.begin(), batch.end(), [&](const Decision& candidate) {
      return candidate.migration == decision.migration && candidate.step == decision.step;
    });
  }

  // Steps of independent migrations at once (at most effects_.jobs, core/parallel_steps.hpp):
  // each start and each end is its own commit, made on this thread one after the other, so each
  // is one fsync as with one step at a time. After every end the engine is asked again what may
  // start beside those still running; it answers nothing once a step asked for a reboot or the
  // attempt failed, and the running ones are then let finish and recorded.
  Expected<void> run_parallel(std::vector<Decision> batch) {
    struct Driver final : ParallelDriver {
      explicit Driver(Runner& owner) : runner(owner) {}
      Expected<void> start(StepFlight& flight) override { return runner.start_flight(flight); }
      Expected<void> finish(const Decision& decision, const StepOutcome& outcome) override {
        runner.flight_deadlines_.erase(decision.migration->id);
        return runner.end_step(decision, outcome);
      }
      std::vector<Decision> more(const std::vector<std::string_view>& in_flight,
                                 std::size_t room) override {
        return startable_steps(runner.state_, runner.input_, in_flight, room);
      }
      Runner& runner;
    } driver(*this);
    auto ran = run_in_parallel(std::move(batch), effects_.jobs, driver);
    flight_deadlines_.clear();
    return ran;
  }

  Expected<void> start_flight(StepFlight& flight) {
    const Decision& decision = flight.decision;
    BOOTSTATE_TRY(commit(step_started(std::move(state_), decision, input_.facts)));
    // The unit's start timeout is set anew (from now) by each extension: it must cover the step
    // of the longest time left, not only the one starting now.
    const auto now = std::chrono::steady_clock::now();
    flight_deadlines_[decision.migration->id] = now + step_allowance(decision);
    auto latest = now;
    for (const auto& [id, deadline] : flight_deadlines_) latest = std::max(latest, deadline);
    begin_step(decision, std::chrono::duration_cast<std::chrono::microseconds>(latest - now));
    auto context = context_for(decision);
    if (!context) {
      flight.error = context.error().message;
      return {};
    }
    flight.context = std::move(*context);
    if (flight.context.record != nullptr) {
      flight.record = *flight.context.record;
      flight.context.record = &flight.record;
    }
    flight.executor = &executor_for(*decision.step);
    return {};
  }

  // The step's own timeout, plus a minute for bootstate's commits around it.
  static std::chrono::microseconds step_allowance(const Decision& decision) {
    return std::chrono::seconds(std::int64_t{decision.step->timeout_seconds} + 60);
  }

  // What the operator and the unit see when a step starts: the journal line, the status line,
  // a start timeout long enough for it (`extension`; by default the step's own allowance).
  void begin_step(const Decision& decision, std::chrono::microseconds extension = {}) {
    emit(Event::StepStarted, describe(decision, decision.reason));
    if (effects_.events) {
      effects_.events->status(describe(decision, "running"));
      if (extension.count() == 0) extension = step_allowance(decision);
      effects_.events->extend_timeout(static_cast<std::uint64_t>(extension.count()));
    }
  }

  Expected<void> end_step(const Decision& decision, const StepOutcome& outcome) {
    emit(outcome.ok ? Event::StepDone : Event::StepFailed, describe(decision, outcome.message));
    return commit(step_finished(std::move(state_), decision, outcome, input_.facts));
  }

  Expected<void> take_backup(const Decision& decision) {
    const Migration& migration = *decision.migration;
    Expected<void> taken =
        effects_.backups != nullptr
            ? effects_.backups->snapshot(migration.id, migration.backup)
            : Expected<void>(make_error(ErrorCode::Unsupported, "no backup store in this phase"));
    if (!taken) {
      emit(Event::StepFailed,
           fmt::format("migration \"{}\": backup failed: {}", migration.id, taken.error().message));
      return commit(
          backup_failed(std::move(state_), decision, taken.error().message, input_.facts));
    }
    emit(Event::BackupTaken, fmt::format("migration \"{}\": backup of {} path(s) taken",
                                         migration.id, migration.backup.size()));
    return commit(backup_taken(std::move(state_), decision, input_.facts));
  }

  Expected<void> restore_backup(const Decision& decision) {
    const Migration& migration = *decision.migration;
    const std::uint64_t attempt = state_.attempt ? state_.attempt->number : 0;
    Expected<std::vector<std::string>> restored =
        effects_.backups != nullptr ? effects_.backups->restore(migration.id, attempt)
                                    : Expected<std::vector<std::string>>(make_error(
                                          ErrorCode::Unsupported, "no backup store in this phase"));
    if (!restored) {
      emit(Event::StepFailed, fmt::format("stale migration \"{}\": restoring the backup failed: {}",
                                          migration.id, restored.error().message));
      return commit(
          restore_failed(std::move(state_), decision, restored.error().message, input_.facts));
    }
    std::string text = fmt::format("stale migration \"{}\": backup restored", migration.id);
    // Nothing lost: what the restore moved aside is named in the journal.
    if (!restored->empty()) {
      text += fmt::format("; {} item(s) written since the backup displaced, kept at: {}",
                          restored->size(), fmt::join(*restored, ", "));
    }
    emit(Event::BackupRestored, text);
    return commit(backup_restored(std::move(state_), decision, input_.facts));
  }

  // Carries out the boot-loader actions; true when a fallback the engine asked for is really
  // arranged. One that failed is said in the message: the caller must not reboot into the same
  // failure (issue #13 item 7).
  bool apply_boot_actions(PhaseEnd& end) {
    bool arranged = false;
    std::string failures;
    for (BootActionKind action : end.boot_actions) {
      Expected<void> done;
      Event event = Event::MarkedBad;
      switch (action) {
        case BootActionKind::MarkBad:
          done = effects_.boot_loader->mark_bad();
          break;
        case BootActionKind::Rearm:
          event = Event::Rearmed;
          done = effects_.boot_loader->rearm();
          break;
        case BootActionKind::MarkGood:
          event = Event::MarkedGood;
          done = effects_.boot_loader->mark_good();
          break;
        case BootActionKind::OneShotToLastGood:
          event = Event::OneShotSet;
          done = one_shot_to_last_good(end.state);
          break;
      }
      if (done) {
        emit(event, fmt::format("boot loader: {}", to_string(action)));
        arranged = arranged || is_fallback(action);
      } else {
        emit(Event::StoreWarning,
             fmt::format("boot loader: {} failed: {}", to_string(action), done.error().message));
        if (is_fallback(action)) {
          failures += fmt::format("{}{} failed: {}", failures.empty() ? "" : "; ",
                                  to_string(action), done.error().message);
        }
      }
    }
    if (!arranged && !failures.empty()) {
      end.message += fmt::format(
          "; the fallback could not be arranged ({}), so bootstate does not reboot into the "
          "same failure",
          failures);
    }
    return arranged;
  }

  // The entry that boots the last good generation now (by its init=), else the one it was
  // booted from when it became good.
  Expected<void> one_shot_to_last_good(const State& state) {
    auto found = effects_.boot_loader->entry_for_generation(state.last_good_generation);
    if (found && *found) return effects_.boot_loader->set_one_shot(**found);
    if (state.last_good_entry.empty()) {
      return make_error(ErrorCode::NotFound, "no boot entry boots {}", state.last_good_generation);
    }
    return effects_.boot_loader->set_one_shot(state.last_good_entry);
  }

  // The record of the decision's step in `state`, or nullptr.
  static const StepRecord* step_in(const State& state, const Decision& decision) {
    const MigrationRecord* record = state.find(decision.migration->id);
    if (record == nullptr) return nullptr;
    for (const StepRecord& step : decision.undo ? record->undo_steps : record->steps) {
      if (step.id == decision.step->id) return &step;
    }
    return nullptr;
  }

  static std::string describe(const Decision& decision, std::string_view what) {
    return fmt::format("{}migration \"{}\" step \"{}\": {}", decision.undo ? "undo of " : "",
                       decision.migration->id, decision.step ? decision.step->id : "-", what);
  }

  PhaseEffects& effects_;
  EngineInput input_;
  State state_;
  std::map<std::string, Migration> recorded_;
  PlanIndex index_;
  DecisionCache cache_;
  std::optional<Plan> expanded_;  // the plan with the chosen resolutions, when there are some
  UnavailableExecutor unavailable_;
  bool wrote_ = false;
  // The steps run_parallel() has in flight, by migration: when each must have ended (its
  // timeout and a minute), for the unit's start timeout.
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> flight_deadlines_;
};

}  // namespace

std::map<std::string, Migration> recorded_definitions(const State& state, const Plan& plan) {
  std::map<std::string, Migration> recorded;
  for (const MigrationRecord& record : state.migrations) {
    if (plan.find(record.id) != nullptr || record.definition_json.empty()) continue;
    auto definition = parse_migration_definition(record.definition_json);
    if (definition) recorded.emplace(record.id, std::move(*definition));
  }
  return recorded;
}

Expected<PhaseResult> run_phase(Phase phase, const Plan& plan, const BootFacts& facts,
                                PhaseEffects& effects) {
  return Runner(phase, plan, facts, effects).run();
}

std::string_view message_id(Event event) {
  // Random 128-bit ids, generated once for bootstate; never reuse or change one.
  constexpr std::string_view ids[] = {
      "6b15deaa545e44888ceec12a505c6516",  // AttemptStarted
      "a79448b1e1ad475c8b9458bcd4d82658",  // AttemptAbandoned
      "6a573b90386b4a97b2347048f8a00b42",  // AttemptFailed
      "fd9127b2cd0c49f88e367b46c5a24973",  // AttemptComplete
      "12bc4765ab6249bf83b7d4197af4f515",  // StepStarted
      "83fee1b621514edcb295326ac4b390df",  // StepDone
      "34b50242e86c494b909623ad2024de99",  // StepFailed
      "ce1f8da6f2a44dc7acb17528a2d2aa9f",  // BackupTaken
      "e66c8b5cd83846c9bf29950361456725",  // BackupRestored
      "a735d012772248ed951215613abc5de2",  // MarkedBad
      "a4b1a8c76e3042069cbb112370479046",  // Rearmed
      "e0236c6698b94c21a29f3ab28506be6e",  // MarkedGood
      "773913c13be44251bd9a445528b7996c",  // OneShotSet
      "4be2ebeb850b4a59911fe787a1e31123",  // RebootRequired
      "dbdac4cf014f4cf8affb52079ba66466",  // StoreWarning
      "5f0c2a9e7d1b4c3a8e6f9b2d4a7c1e35",  // ItemReported
  };
  return ids[static_cast<std::size_t>(event)];
}

}  // namespace bootstate

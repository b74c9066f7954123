// The engine: docs/DESIGN.md semantics 1–7 as pure decisions. Every function here takes the
// persisted state, the booted plan and the facts of this boot and returns what to do and what
// to commit; none touches a file, a process or the boot loader (the phase runner does).
//
// One phase run is:   reconcile → (next → effect → record)* → finish
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/check_items.hpp"
#include "core/interfaces.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

// Loop breaker (semantics 6): an attempt fails after this many consecutive boots that
// completed no step, or after this many boots in all.
inline constexpr std::uint32_t kMaxBootsWithoutProgress = 4;
inline constexpr std::size_t kMaxBootsPerAttempt = 64;

// The plan's shape, computed once per phase run instead of at every decision: with 1,000
// pending migrations, `status` rebuilt the execution order and looked every id up in the plan's
// map once per step (issue #17, docs/PERFORMANCE.md "(e)").
struct PlanIndex {
  std::vector<std::size_t> order;                              // migration_order(plan)
  std::unordered_map<std::string_view, std::size_t> position;  // first migration with the id
  std::vector<std::vector<std::size_t>> after;                 // positions of each `after`
};
PlanIndex index_plan(const Plan& plan);

struct DecisionCache;  // core/decision_cache.hpp

struct EngineInput {
  const Plan* plan = nullptr;        // the booted generation's validated plan
  const PlanIndex* index = nullptr;  // index_plan(*plan), or nullptr: built where needed
  // Parsed definitions of recorded migrations that are not in `plan` (stale ones), by id. A
  // record whose definition could not be parsed is absent here and reported as a blocker.
  const std::map<std::string, Migration>* recorded = nullptr;
  BootFacts facts;
  BootedEntry entry;
  Phase phase = Phase::PostActivation;
  // The store had no usable slot and was moved aside in this run (StateStore::load): reconcile
  // records it in the state, so that steps whose effect the store can no longer know are held
  // (docs/DESIGN.md "Nothing lost").
  bool store_lost = false;
  // Views carried from one decision to the next by the phase runner (core/decision_cache.hpp),
  // or nullptr: next() computes them all at every decision. next() notes in it the migration of
  // each decision it hands out.
  DecisionCache* cache = nullptr;
};

// --- reconcile: once at the start of every phase run --------------------------------------

// What reconcile did, so each change reaches the journal under its own MESSAGE_ID.
enum class AttemptChange : std::uint8_t {
  Started,
  Abandoned,
  Reopened,
  Failed,
  Reintroduced,
  StoreLost,  // the store was lost: steps that cannot tell whether they ran are held
};

struct Reconciled {
  State state;
  bool changed = false;
  std::vector<std::pair<AttemptChange, std::string>> events;  // in words, for the journal
};

// Opens, abandons or archives the attempt (semantics 5), counts this boot and applies the loop
// breaker (semantics 6), brings back undone migrations that the plan has again, and forgets
// stale records that never touched the machine. An error only for a transition missing from
// the tables (a bug, reported as such).
Expected<Reconciled> reconcile(const State& state, const EngineInput& input);

// --- next: the one thing to do now ----------------------------------------------------------

enum class ActionKind : std::uint8_t {
  None,           // nothing more in this phase
  Bookkeeping,    // commit `Decision::commit` (no effect), then ask again
  TakeBackup,     // snapshot the migration's `backup` paths, then backup_taken()
  RunStep,        // step_started(), commit, run the step, step_finished()
  CheckStep,      // an interrupted step with a check: run it, then check_finished()
  RevertStep,     // a stale migration's storage step reverts itself: step_started(), revert
  RestoreBackup,  // a stale migration's backup is put back, then backup_restored()
};
std::string_view to_string(ActionKind kind);

struct Decision {
  ActionKind kind = ActionKind::None;
  const Migration* migration = nullptr;  // the definition (plan or recorded)
  const Step* step = nullptr;            // RunStep/CheckStep/RevertStep
  bool undo = false;                     // works on a stale migration (undo step or revert)
  std::string reason;                    // in words, for the journal
  std::optional<State> commit;           // Bookkeeping only
  // Set when the migration had no record in the records next() decided from, named by their
  // address and count: step_started() then adds the record without looking for it. A miss of
  // State::find scans every record, and every new migration had one, which made a preview of
  // thousands of pending migrations quadratic (issue #17). A decision is for the state it was
  // made from; given another (or the same after a record was added), the address or the count
  // differs and the record is looked for as before.
  struct NoRecordIn {
    const MigrationRecord* records = nullptr;
    std::size_t count = 0;
  };
  std::optional<NoRecordIn> no_record;
};

Expected<Decision> next(const State& state, const EngineInput& input);

// --- parallel: the steps that may run at once (docs/DESIGN.md "Independent migrations in
// parallel") ---------------------------------------------------------------------------------

// The forward command steps that may start now, besides the steps of `in_flight` (ids of the
// migrations whose step this run has started and not yet finished), at most `room` of them, in
// execution order; each a RunStep decision as next() makes it. Empty unless the only work left
// before them is plain forward steps: while undo, a backup restore, an interrupted step or a
// bookkeeping commit is pending, or the attempt is not in progress, nothing starts beside what
// runs (next() decides those, one at a time). A migration that asked for a reboot in this boot
// (and every one `after` it) starts nothing more; the other, independent ones go on, so that
// they finish before the reboot. At most one step per migration; a migration runs only once
// every migration it is `after` (directly or through others) is applied, so any two returned
// migrations are independent. Storage, firmware and backups are never returned: they stay
// serial.
std::vector<Decision> startable_steps(const State& state, const EngineInput& input,
                                      const std::vector<std::string_view>& in_flight,
                                      std::size_t room);

// --- record: the state to commit around an effect ------------------------------------------

// Each returns the state to commit; an error only for a transition missing from the table (a
// bug in bootstate, reported as such).
Expected<State> step_started(State state, const Decision& decision, const BootFacts& facts);
Expected<State> step_finished(State state, const Decision& decision, const StepOutcome& outcome,
                              const BootFacts& facts);
// After CheckStep: Applied → the step is done, unless the interrupted run had reported items
// (`interrupted`: StepExecutor::interrupted_report): then they are recorded as step_finished
// records a run's, and an error item fails the step. NotApplied or Unknown → the step is
// pending again, so the next decision runs it (the check says its effect is not in place).
Expected<State> check_finished(State state, const Decision& decision, CheckResult result,
                               const BootFacts& facts, const StepOutcome& interrupted = {});
Expected<State> backup_taken(State state, const Decision& decision, const BootFacts& facts);
// The backup before the first step could not be taken: the migration cannot start without its
// safety net, so its first step fails with `why` (and a required one fails the attempt).
Expected<State> backup_failed(State state, const Decision& decision, std::string_view why,
                              const BootFacts& facts);
Expected<State> backup_restored(State state, const Decision& decision, const BootFacts& facts);
// Restoring a stale migration's backup failed: its undo failed with `why` (the attempt fails).
Expected<State> restore_failed(State state, const Decision& decision, std::string_view why,
                               const BootFacts& facts);

// --- checks: before a phase's migrations (docs/DESIGN.md "Checks and resolutions") ----------

struct ChecksRan {
  State state;
  bool changed = false;
  std::vector<std::string> blockers;  // in words, each naming the `bootstate choose` commands
};

// Records the items the checks of this phase (`checks`, by id) reported for the attempt's
// generation, and fails the attempt (through the transition table) when one is an error item
// without a choice, or an error item whose chosen resolution was applied and is still
// reported. An error only for a transition missing from the tables (a bug).
Expected<ChecksRan> checks_ran(const State& state, const Plan& plan,
                               const std::vector<std::string>& checks,
                               const std::vector<CheckItem>& items, const BootFacts& facts);

// The command that chooses `resolution` for `item`. `plan_generation`: the generation whose plan
// has the check, when `choose` cannot know it otherwise (a preview of a generation not booted
// yet, whose items are in no state): then the command carries `--plan GENERATION`.
std::string choose_command(std::string_view item, std::string_view resolution,
                           std::string_view plan_generation = {});

// What to tell the operator about an open error item: its message and the commands.
std::string blocker_text(const ItemRecord& item, std::string_view plan_generation = {});

// --- finish: what this phase run ends with --------------------------------------------------

enum class BootActionKind : std::uint8_t { MarkBad, Rearm, MarkGood, OneShotToLastGood };
std::string_view to_string(BootActionKind kind);

enum class PhaseExit : std::uint8_t { Ok, Failed, RebootRequired };

struct PhaseEnd {
  State state;
  bool changed = false;
  PhaseExit exit = PhaseExit::Ok;
  bool attempt_completed = false;            // the attempt completed in this run (semantics 7)
  std::vector<BootActionKind> boot_actions;  // in order
  std::string message;                       // in words: why it failed / why it reboots
  // RebootRequired: a reboot now continues the work. False in a live switch, which never
  // reboots the machine by itself (the operator reboots into the generation when ready).
  bool reboot_helps = false;
};

// An error only for a transition missing from the tables (a bug).
Expected<PhaseEnd> finish(const State& state, const EngineInput& input);

// --- shared views (also used by status and preview) -----------------------------------------

enum class Readiness : std::uint8_t {
  Applied,      // every step done
  Runnable,     // has steps to run and may run them now (in their phases)
  Waiting,      // follows (`after`) a migration that is runnable or waiting: runs later
  NeedsAccept,  // optional and not accepted
  Declined,     // declined by the operator
  Failed,       // a step failed (retry to run again)
  Blocked,      // cannot run: follows one that will not apply, or its definition changed
  Held,         // the store was lost and a step can neither be re-run safely nor checked:
                // waits for `bootstate accept ID` (or follows one that does)
};
std::string_view to_string(Readiness readiness);

struct MigrationView {
  const Migration* migration = nullptr;
  const MigrationRecord* record = nullptr;  // nullptr when never touched
  Readiness readiness = Readiness::Runnable;
  std::string detail;  // for Waiting/Blocked/Failed/Held: why, naming the migration or step
  // Blocked because the plan changed the definition of a migration that (partly) ran: the plan
  // reuses the id for different work, which bootstate never runs silently.
  bool definition_changed = false;
};

// The plan's migrations in execution order (`after` first, then plan order), with readiness.
std::vector<MigrationView> plan_view(const Plan& plan, const State& state,
                                     const PlanIndex* index = nullptr);

struct StaleView {
  const MigrationRecord* record = nullptr;
  const Migration* definition = nullptr;  // nullptr when unreadable
  bool kept = false;                      // keep/firmware/declined undo: its effect stays
  bool pending = false;                   // undo work remains
  std::string blocker;                    // non-empty: cannot be undone, and why
};

// Recorded migrations not in the plan that touched the machine, newest first (undo order).
std::vector<StaleView> stale_view(const State& state, const Plan& plan,
                                  const std::map<std::string, Migration>& recorded,
                                  const PlanIndex* index = nullptr);

// The plan's migrations that a failed or cancelled live switch undoes (docs/DESIGN.md "A live
// switch", "Cancel"): those of the attempt that touched the machine and did not complete (the
// failed one, one interrupted) — and when the operator cancelled the attempt, the applied ones
// too — newest first, viewed like stale ones. Empty unless `facts` is a live switch and the
// attempt of its generation failed or was cancelled.
std::vector<StaleView> failed_switch_view(const State& state, const Plan& plan,
                                          const BootFacts& facts);

// The plan has a migration that will run (runnable, or waiting for one that is), or a stale
// migration still has undo work (or is blocked): the one answer reconcile, finish and status
// share.
bool work_remains(const State& state, const Plan& plan,
                  const std::map<std::string, Migration>& recorded,
                  const PlanIndex* index = nullptr);

// The operator cancelled the current attempt (`bootstate cancel`): it is abandoned but still
// current. An attempt abandoned because another generation booted is archived at once, so a
// current abandoned attempt is always a cancelled one.
bool attempt_cancelled(const State& state);

// A step has a way to tell whether its effect is in place after an interruption.
bool has_check(const Step& step);

// A step that may neither run twice nor be checked: after the store was lost it is held.
bool needs_operator_after_loss(const Step& step);

// The migration of the plan whose required work cannot run in this attempt (a required one that
// is blocked, or any one whose definition changed after it ran), with the reason naming it and
// what blocks it; nullopt when there is none.
struct Unrunnable {
  const Migration* migration = nullptr;
  std::string reason;
};
std::optional<Unrunnable> required_work_blocked(const std::vector<MigrationView>& views);

// A required migration of the plan that is held after a store loss, with the reason; nullopt
// when there is none.
std::optional<Unrunnable> required_work_held(const std::vector<MigrationView>& views);

}  // namespace bootstate

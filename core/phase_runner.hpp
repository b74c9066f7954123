// The phase runner: `bootstate run --phase P`. It drives the engine's decisions through the
// effect interfaces — commit, act, commit — and ends the phase with the boot-loader actions the
// engine asks for. All effects go through the interfaces, so tests drive it with fakes.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/interfaces.hpp"
#include "core/store.hpp"

namespace bootstate {

// Journal events with stable ids (docs/EVENTS.md lists them): people grep for these.
enum class Event : std::uint8_t {
  AttemptStarted,
  AttemptAbandoned,
  AttemptFailed,
  AttemptComplete,
  StepStarted,
  StepDone,
  StepFailed,
  BackupTaken,
  BackupRestored,
  MarkedBad,
  Rearmed,
  MarkedGood,
  OneShotSet,
  RebootRequired,
  StoreWarning,
  ItemReported,  // a check reported an item (issue #15)
};
std::string_view message_id(Event event);  // a 128-bit id as 32 hex digits

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void event(Event event, std::string_view text) = 0;
  // Progress for the unit (sd_notify STATUS=); default: nothing.
  virtual void status(std::string_view) {}
  // The unit's start timeout must last at least `usec` more (sd_notify EXTEND_TIMEOUT_USEC=):
  // called before every step with its own timeout, so the units need no long fixed timeout.
  virtual void extend_timeout(std::uint64_t) {}
};

// The state as the runner sees it: the durable two-slot store (StoreAccess), or memory for
// preview, which must not pay for encoding every simulated commit.
class StateAccess {
 public:
  virtual ~StateAccess() = default;
  virtual Expected<LoadResult> load() = 0;
  virtual Expected<void> commit(const State& state) = 0;
  // At the end of a phase run: the state last loaded or committed, handed over once.
  virtual void adopt(State&& state) { (void)state; }
};

class StoreAccess final : public StateAccess {
 public:
  explicit StoreAccess(StateStore& store) : store_(store) {}
  Expected<LoadResult> load() override { return store_.load(); }
  Expected<void> commit(const State& state) override { return store_.commit(state); }

 private:
  StateStore& store_;
};

class MemoryState final : public StateAccess {
 public:
  explicit MemoryState(State state) : state_(std::move(state)) {}
  Expected<LoadResult> load() override {
    LoadResult result;
    result.state = state_;
    return result;
  }
  // Nothing is copied per commit: the runner hands the last committed state over once, at the
  // end of the phase run (adopt). A preview of 2,000 steps at 2,000 migrations copied the whole
  // State 4,000 times (issue #17).
  Expected<void> commit(const State&) override { return {}; }
  void adopt(State&& state) override { state_ = std::move(state); }
  const State& state() const { return state_; }

 private:
  State state_;
};

struct StepPaths {
  std::string work_dir;  // exists and is writable
  std::string log_path;  // its directory exists
};

struct PhaseEffects {
  StateAccess* store = nullptr;
  BootLoader* boot_loader = nullptr;
  BackupStore* backups = nullptr;               // nullptr where the root file system is not mounted
  std::map<StepKind, StepExecutor*> executors;  // a missing kind fails its steps
  std::function<Expected<StepPaths>(const Migration&, const Step&, std::uint64_t attempt)> paths;
  EventSink* events = nullptr;
  std::string root = "/";  // BOOTSTATE_ROOT for steps
  // Runs the plan's checks of the phase (docs/DESIGN.md "Checks and resolutions"); nullptr:
  // a check of the phase cannot run and is an error item of its own. Never used for a plan
  // without checks.
  CheckRunner* checks = nullptr;
  // How many forward command steps of independent migrations may run at once (`--jobs`,
  // docs/DESIGN.md "Independent migrations in parallel"). 1: one step at a time, the order of
  // every decision exactly as before. Above 1 the step executors are called from several
  // threads at once and must be safe for it; the store, the boot loader, the backups and the
  // event sink are still called from the runner's thread alone.
  std::size_t jobs = 1;
};

struct PhaseResult {
  PhaseExit exit = PhaseExit::Ok;
  std::string message;
  bool wrote = false;  // at least one commit happened
  // A failure arranged a fallback (entry marked bad, or the one-shot set): only then is a
  // reboot worth asking for. A failure with nothing to fall back to must not reboot-loop.
  bool fallback_arranged = false;
  // The caller reboots now (unless --no-reboot): a reboot continues the work, or a fallback is
  // arranged. Never in a live switch, and never for a failure without a fallback.
  bool reboot = false;
  // The committed state is idle for another boot of this generation and plan, in every phase
  // (settled_in_every_phase, core/store_idle.hpp): the caller may write the idle certificate.
  bool settled = false;
};

// Runs one phase for the booted plan. Errors: the store cannot be read or written (Io,
// Unsupported for a newer format), or a bug in the transition tables.
Expected<PhaseResult> run_phase(Phase phase, const Plan& plan, const BootFacts& facts,
                                PhaseEffects& effects);

// Parsed definitions of the recorded migrations that `plan` does not have (stale ones).
std::map<std::string, Migration> recorded_definitions(const State& state, const Plan& plan);

}  // namespace bootstate

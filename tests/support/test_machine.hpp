// A machine for engine tests: the phase runner over in-memory slots, a fake boot loader, fake
// executors and a fake backup store. Boots are explicit (reboot() gives a new boot id), so a
// test reads like the sequence of boots it describes.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "core/phase_runner.hpp"
#include "core/store.hpp"
#include "tests/support/fake_boot_loader.hpp"
#include "tests/support/fake_executor.hpp"
#include "tests/support/fake_slot_storage.hpp"

namespace bootstate::testing {

// A plan for `generation` with the given migrations (JSON objects, comma separated).
std::string plan_json(const std::string& generation, const std::string& migrations);
// A command step object: {"id":id,"phase":phase,"kind":"command","command":["/bin/true"],...extra}
std::string command_step(const std::string& id, const std::string& phase = "post-activation",
                         const std::string& extra = "");
Plan must_parse(const std::string& json);
// A migration object: {"id":id,"policy":policy<extra>,"steps":[steps]}; `extra` starts with a
// comma ("," + R"("after":["a"])").
std::string migration(const std::string& id, const std::string& steps,
                      const std::string& extra = "", const std::string& policy = "required");

// Three generations' toplevels, as the engine tests boot them.
inline const std::string kGen1 = "/nix/store/1111-nixos-system-1";
inline const std::string kGen2 = "/nix/store/2222-nixos-system-2";
inline const std::string kGen3 = "/nix/store/3333-nixos-system-3";

class TestMachine {
 public:
  explicit TestMachine(FakeBootLoader loader = FakeBootLoader::counting("entry-2", 3, 0));

  void boot_plan(const std::string& plan_text) { plan_ = must_parse(plan_text); }
  const Plan& plan() const { return plan_; }
  // A new boot: a new boot id (and, for the fake boot loader, nothing else changes).
  void reboot() { boot_id_ = "boot-" + std::to_string(++boots_); }
  // Runs one phase; REQUIREs that the runner itself did not error.
  PhaseResult run(Phase phase);
  // Runs the phase and returns the error (for store failures).
  Expected<PhaseResult> try_run(Phase phase);
  // Runs the three phases in order while they exit Ok; returns the last result.
  PhaseResult boot();
  // The committed state, read back from the slots as the next boot would.
  State state();
  const std::string& boot_id() const { return boot_id_; }

  FakeSlotStorage slots;
  FakeBootLoader loader;
  FakeExecutor executor;
  FakeBackupStore backups;
  std::int64_t now_usec = 1'700'000'000'000'000;
  // The generation init= names. Empty: the plan's (a boot). Set: a live switch from it to the
  // plan's generation, which /run/current-system then names (docs/DESIGN.md "A live switch");
  // set to the plan's own generation: a stage-2 run where both name the booted one.
  std::string booted;
  // PhaseEffects::jobs: steps of independent migrations run at once when above 1.
  std::size_t jobs = 1;

 private:
  Plan plan_;
  std::string boot_id_ = "boot-1";
  int boots_ = 1;
};

}  // namespace bootstate::testing

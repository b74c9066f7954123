// The state store as operator decisions use it (accept, decline, retry, cancel): the store lock
// taken first, then the state loaded, decided on and committed under it (core/store_lock.hpp).
// A decision taken while `run` advances a phase waits for it and applies to the state the run
// left, instead of being acknowledged and then overwritten by the run's next commit.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/machine.hpp"
#include "core/slot_files.hpp"
#include "core/store.hpp"
#include "core/store_lock.hpp"

namespace bootstate::cli {

// The generation an operator decision is for: the booted one when the plan is the booted plan
// (its /run/booted-system placeholder), else the one the plan names (--plan).
std::string plan_generation(const BootFacts& facts, const Plan& plan);

// The boot loader as an operator command uses it: systemd-boot on `esp`, the booted entry as
// `facts` say, wrapped by the crash-test hook when one is asked for. `loader` points into the
// two owners, which keep it valid when the struct moves.
struct OperatorBootLoader {
  std::unique_ptr<BootLoader> systemd_boot;
  std::unique_ptr<BootLoader> crash_hook;
  BootLoader* loader = nullptr;
};
Expected<OperatorBootLoader> operator_boot_loader(const Machine& machine, const std::string& esp,
                                                  const BootFacts& facts);

// `retry` and `choose` for a generation whose entries are +0-DONE: they get their tries back,
// so systemd-boot boots it again. The renamed files, each printed as "boot entry of … re-armed".
Expected<std::vector<std::string>> rearm_entries(const Machine& machine, const std::string& esp,
                                                 const BootFacts& facts,
                                                 const std::string& generation);
void print_rearmed(const std::string& generation, const std::vector<std::string>& files);

class DecisionStore {
 public:
  // Takes the lock (waiting up to 15 minutes for a running phase, saying so), loads the state.
  // Errors changed nothing: a caller that is not root, a lock not released in time, no store.
  static Expected<DecisionStore> open(const Machine& machine, const std::string& esp);
  // What open() checks first (a caller that is not root: "needs root"), for a command that has
  // slow work to do before it takes the lock.
  static Expected<void> check_access(const Machine& machine, const std::string& esp);

  Expected<void> commit(const State& decided);

  State state;  // as loaded

 private:
  DecisionStore(StoreLock lock, const std::string& directory);

  StoreLock lock_;
  std::unique_ptr<SlotFiles> slot_files_;
  std::unique_ptr<SlotStorage> crash_hook_;  // the crash-test wrapper, when one is asked for
  std::unique_ptr<StateStore> store_;
};

}  // namespace bootstate::cli

// simulate_boot's control flow with stand-in programs for bootstate (/bin/true exits 0,
// /bin/false 1, /bin/ls rejects "--root" with 2): what ends a boot, faults, bless, records.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/bootsim/machine.hpp"
#include "tests/bootsim/tree.hpp"

using namespace bootsim;
namespace fs = std::filesystem;

namespace {

struct Machine {
  explicit Machine(const std::string& program, const std::string& counter = "+3-0") {
    std::string pattern = (fs::temp_directory_path() / "bootsim-boot-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    tree.root = pattern;
    REQUIRE(init_tree(tree));
    GenerationSpec spec;
    spec.toplevel = "/nix/store/aaa-nixos-system";
    spec.counter = counter;
    auto file = add_generation(tree, spec);
    REQUIRE(file);
    sim.loader = loader_options(tree);
    sim.bootstate = program;
  }
  ~Machine() {
    std::error_code ec;
    fs::remove_all(tree.root, ec);
  }
  TreeOptions tree;
  SimOptions sim;
};

}  // namespace

TEST_CASE("power cuts parse with an optional boot number") {
  auto cut = parse_power_cut("after:pre-switch-root");
  REQUIRE(cut);
  CHECK(cut->boot == 0);
  CHECK_FALSE(cut->before);
  CHECK(cut->phase == SimPhase::PreSwitchRoot);
  cut = parse_power_cut("3:before:post-activation");
  REQUIRE(cut);
  CHECK(cut->boot == 3);
  CHECK(cut->before);
  CHECK_FALSE(parse_power_cut("during:post-activation"));
  CHECK_FALSE(parse_power_cut("before:pre-mount"));
}

TEST_CASE("all phases exit 0: boot-complete.target, then bless-boot renames the entry") {
  Machine m("/bin/true");
  auto record = simulate_boot(m.sim, 1);
  REQUIRE(record);
  CHECK(record->phases.size() == 3);
  CHECK(record->outcome == BootOutcome::Complete);
  REQUIRE(record->bless);
  CHECK(*record->bless == BlessOutcome::Renamed);
  const std::string id = default_entry_id("/nix/store/aaa-nixos-system");
  CHECK(record->entries_after == std::vector<std::string>{id + ".conf"});
  CHECK(summary_line(*record).find("bless: blessed") != std::string::npos);
  CHECK(json_record(*record).find("\"outcome\":\"complete\"") != std::string::npos);
  // The initrd carries the booted generation's plan (none here: nothing installed).
  CHECK_FALSE(fs::exists(m.tree.root + "/etc/bootstate/plan.json"));
}

TEST_CASE("exit 1 ends the boot unblessed — exit 2 stops the simulation") {
  Machine failing("/bin/false");
  auto record = simulate_boot(failing.sim, 1);
  REQUIRE(record);
  CHECK(record->outcome == BootOutcome::PhaseFailed);
  CHECK(record->phases.size() == 1);
  CHECK_FALSE(record->bless);

  Machine rejecting("/bin/ls");  // ls: unrecognized option '--root' → exit 2
  auto stopped = simulate_boot(rejecting.sim, 1);
  REQUIRE_FALSE(stopped);
  CHECK(stopped.error().message.find("exited 2") != std::string::npos);
}

TEST_CASE("faults: a power cut before or after a phase, a panic after the initrd") {
  Machine m("/bin/true");
  m.sim.power_cuts = {*parse_power_cut("1:after:pre-switch-root"),
                      *parse_power_cut("2:before:initrd-pre-mount")};
  auto first = simulate_boot(m.sim, 1);
  REQUIRE(first);
  CHECK(first->outcome == BootOutcome::PowerCut);
  CHECK(first->phases.size() == 2);
  CHECK_FALSE(first->bless);
  auto second = simulate_boot(m.sim, 2);
  REQUIRE(second);
  CHECK(second->outcome == BootOutcome::PowerCut);
  CHECK(second->phases.empty());

  m.sim.power_cuts.clear();
  m.sim.panic_generations = {"aaa-nixos"};
  auto third = simulate_boot(m.sim, 3);
  REQUIRE(third);
  CHECK(third->outcome == BootOutcome::Panic);
  CHECK(third->phases.size() == 2);
  // Three boots without blessing used the three tries: +3-0 → +2-1 → +1-2 → +0-3.
  const std::string id = default_entry_id("/nix/store/aaa-nixos-system");
  CHECK(third->entries_after == std::vector<std::string>{id + "+0-3.conf"});
}

TEST_CASE("without a counter bless-boot does not run") {
  Machine m("/bin/true", "");
  auto record = simulate_boot(m.sim, 1);
  REQUIRE(record);
  CHECK(record->outcome == BootOutcome::Complete);
  CHECK_FALSE(record->bless);
  CHECK(summary_line(*record).find("no boot counting") != std::string::npos);
}

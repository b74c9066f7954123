// Scenarios (b), (c), (d), (f): boot counting across several boots — a generation that crashes
// every boot, a multi-reboot migration that progresses, one that never progresses, and entries
// named the way nixpkgs names them.
#include "tests/scenarios/scenario.hpp"

using namespace scenarios;
using bootsim::BootOutcome;

namespace {

std::string install_good_gen1(Scenario& s, const std::string& counter = "+3-0") {
  s.write("var/lib/app/data.txt", "version 1\n");
  const std::string gen1 = s.install("aaaa1111-gen1", 1, plan({}), counter);
  CHECK(s.boot().outcome == BootOutcome::Complete);
  return gen1;
}

// Boots until generation `until` is booted (or `limit` boots); returns how many boots booted
// `counted` on the way.
int boot_until(Scenario& s, const std::string& until, const std::string& counted, int limit) {
  int count = 0;
  for (int i = 0; i < limit; ++i) {
    const BootRecord record = s.boot();
    if (record.firmware.generation == counted) ++count;
    if (record.firmware.generation == until) break;
  }
  return count;
}

}  // namespace

TEST_CASE("(b) a generation that crashes after the initrd every boot is abandoned and undone") {
  Scenario s("b-crash-loop");
  INFO(s.transcript);
  const std::string gen1 = install_good_gen1(s);
  const std::string gen2 = s.install(
      "bbbb2222-gen2", 2,
      plan({migration(
          "layout",
          {command_step("move", "pre-switch-root", {"/usr/bin/touch", "@ROOT@/var/lib/app/moved"}),
           command_step("finish", "post-activation", {"/bin/true"})},
          R"(,"backup":["/var/lib/app"])")}));
  s.sim.panic_generations = {gen2};

  const int gen2_boots = boot_until(s, gen1, gen2, 10);
  REQUIRE_MESSAGE(s.boots.back().firmware.generation == gen1, "never fell back");
  // 3 tries, plus one re-arm for the boot that completed "move".
  CHECK(gen2_boots <= 4);
  CHECK(s.boots.back().outcome == BootOutcome::Complete);
  CHECK_FALSE(s.exists("var/lib/app/moved"));
  CHECK(s.read("var/lib/app/data.txt") == "version 1\n");

  auto status = s.json();
  auto history = s.json({"history"});
  const bool abandoned =
      find_object(status, {{"generation", gen2}, {"state", "abandoned"}}) != nullptr ||
      find_object(history, {{"generation", gen2}, {"state", "abandoned"}}) != nullptr;
  CHECK_MESSAGE(abandoned, "no attempt for " << gen2 << " recorded abandoned");
  const auto* layout = find_by_id(status, "migrations", "layout");
  REQUIRE(layout != nullptr);
  CHECK(at(*layout, "state") == "undone");
  CHECK(at(status, "last_good") == gen1);
}

TEST_CASE("(c) a 4-reboot migration with tries = 2 completes because progress re-arms") {
  Scenario s("c-four-reboots");
  INFO(s.transcript);
  const std::string gen1 = install_good_gen1(s);
  auto touch = [](const std::string& id, const std::string& phase, bool reboot) {
    return command_step(id, phase, {"/usr/bin/touch", "@ROOT@/var/lib/app/" + id},
                        reboot ? R"(,"reboot":true)" : "");
  };
  const std::string gen2 = s.install(
      "cccc3333-gen2", 2,
      plan({migration("long",
                      {touch("s1", "initrd-pre-mount", true), touch("s2", "pre-switch-root", true),
                       touch("s3", "post-activation", true), touch("s4", "post-activation", true),
                       touch("s5", "post-activation", false)})}),
      "+2-0");
  const std::string id2 = bootsim::default_entry_id(gen2);

  for (int i = 0; i < 8; ++i) {
    const BootRecord record = s.boot();
    CHECK(record.firmware.generation == gen2);
    if (record.outcome == BootOutcome::Complete) break;
    CHECK(record.outcome == BootOutcome::RebootRequested);
  }
  CHECK(s.boots.size() == 1 + 5);  // generation 1, then one boot per step
  CHECK(s.boots.back().outcome == BootOutcome::Complete);
  CHECK(s.entry_file(gen2) == id2 + ".conf");  // blessed, by bootstate or bless-boot
  for (const char* step : {"s1", "s2", "s3", "s4", "s5"}) {
    CHECK(s.exists(std::string("var/lib/app/") + step));
  }
  const auto status = s.json();
  CHECK(at(status, "attempt.generation") == gen2);
  CHECK(at(status, "attempt.state") == "complete");
  CHECK(at(status, "last_good") == gen2);
  const auto* long_migration = find_by_id(status, "migrations", "long");
  REQUIRE(long_migration != nullptr);
  CHECK(at(*long_migration, "state") == "applied");
}

TEST_CASE("(d) the loop breaker stops an attempt that never progresses") {
  Scenario s("d-loop-breaker");
  INFO(s.transcript);
  const std::string gen1 = install_good_gen1(s);
  // Nine tries: the counter alone would keep booting generation 2 for nine boots.
  const std::string gen2 = s.install(
      "dddd4444-gen2", 2,
      plan({migration(
          "never",
          {command_step("late", "post-activation", {"/usr/bin/touch", "@ROOT@/var/lib/app/late"})},
          R"(,"backup":["/var/lib/app"])")}),
      "+9-0");
  s.sim.panic_generations = {gen2};

  const int gen2_boots = boot_until(s, gen1, gen2, 12);
  REQUIRE_MESSAGE(s.boots.back().firmware.generation == gen1, "never fell back");
  CHECK(gen2_boots <= 5);  // kMaxBootsWithoutProgress = 4, plus the boot that notices
  const std::string entry = s.entry_file(gen2);
  CHECK_MESSAGE(entry.find("+0-") != std::string::npos, "generation 2's entry is " << entry);
  CHECK_FALSE(s.exists("var/lib/app/late"));

  auto status = s.json();
  auto history = s.json({"history"});
  const bool stopped =
      find_object(status, {{"generation", gen2}, {"state", "failed"}}) != nullptr ||
      find_object(history, {{"generation", gen2}, {"state", "failed"}}) != nullptr;
  CHECK_MESSAGE(stopped, "no attempt for " << gen2 << " recorded failed by the loop breaker");
  CHECK(at(status, "last_good") == gen1);
}

TEST_CASE("(f) entries named the nixpkgs way (nixos-<hash>+3.conf) count and bless") {
  Scenario s("f-nixpkgs-names");
  INFO(s.transcript);
  const std::string gen1 = install_good_gen1(s, "+3");
  CHECK(s.boots.back().firmware.file_after == bootsim::default_entry_id(gen1) + "+2-1.conf");
  CHECK(s.entry_file(gen1) == bootsim::default_entry_id(gen1) + ".conf");

  const std::string gen2 = s.install(
      "ffff6666-gen2", 2,
      plan({migration("simple", {command_step("touch", "post-activation",
                                              {"/usr/bin/touch", "@ROOT@/var/lib/app/simple"})})}),
      "+3");
  const std::string id2 = bootsim::default_entry_id(gen2);
  const BootRecord record = s.boot();
  CHECK(record.firmware.file_before == id2 + "+3.conf");
  CHECK(record.firmware.file_after == id2 + "+2-1.conf");
  CHECK(record.outcome == BootOutcome::Complete);
  CHECK(record.bless.has_value());
  CHECK(s.entry_file(gen2) == id2 + ".conf");
  CHECK(s.exists("var/lib/app/simple"));
  const auto status = s.json();
  CHECK(at(status, "attempt.state") == "complete");
  CHECK(at(status, "last_good") == gen2);
  CHECK(at(status, "booted.generation") == gen2);
  CHECK_MESSAGE(at(status, "booted.entry").find(id2) != std::string::npos,
                "booted.entry is " << at(status, "booted.entry"));
}

// status hands the generation it read from /proc/cmdline to SystemdBoot (which no longer reads
// the file itself): this is the check that the two are wired together.
TEST_CASE(
    "status: a kernel command line that boots another generation than the entry makes "
    "counting impossible (kexec)") {
  Scenario s("kexec");
  INFO(s.transcript);
  const std::string gen1 = install_good_gen1(s);
  CHECK(at(s.json(), "booted.counting") != "impossible");

  // What a kexec into another kernel command line leaves behind: systemd-boot's variables
  // still name gen1's entry, /proc/cmdline names something else.
  const std::string cmdline = s.read("proc/cmdline");
  s.write("proc/cmdline", "init=/nix/store/eeee5555-kexeced-nixos-system/init\n");
  const auto status = s.json();
  CHECK(at(status, "booted.generation") == "/nix/store/eeee5555-kexeced-nixos-system");
  CHECK(at(status, "booted.counting") == "impossible");
  CHECK_MESSAGE(at(status, "booted.counting_detail").find("kexec") != std::string::npos,
                at(status, "booted.counting_detail"));

  s.write("proc/cmdline", cmdline);
  CHECK(at(s.json(), "booted.counting") != "impossible");
  CHECK(at(s.json(), "booted.generation") == gen1);
}

// Issue #14 item 7 through the real binary: a generation whose post-activation failed has its
// entry named bad (+0-1) and nixpkgs' builder never renames it back; after the operator fixes
// the cause, `bootstate retry` must give the entry its tries back, or systemd-boot (bootsim's
// model of it) keeps skipping that generation and the retry never runs.
#include <sys/mount.h>

#include <filesystem>

#include "tests/scenarios/scenario.hpp"

using namespace scenarios;
using bootsim::BootOutcome;

namespace {

void fail_fix_retry_boot(Scenario& s) {
  INFO(s.transcript);
  const std::string gen1 = s.install("aaaa1111-gen1", 1, plan({}), "+3-0");
  REQUIRE(s.boot().outcome == BootOutcome::Complete);
  const std::string gen2 = s.install(
      "bbbb2222-gen2", 2,
      plan({migration("app-v2",
                      {command_step("verify", "post-activation",
                                    {"/usr/bin/test", "-e", "@ROOT@/var/lib/app/fixed"})})}),
      "+3-0");
  const std::string id2 = bootsim::default_entry_id(gen2);

  const BootRecord failed = s.boot();
  REQUIRE(failed.firmware.generation == gen2);
  CHECK(failed.outcome == BootOutcome::PhaseFailed);
  CHECK(s.entry_file(gen2) == id2 + "+0-1.conf");

  // The operator fixes the cause and retries, before the fallback reboot.
  s.write("var/lib/app/fixed", "yes\n");
  auto retried = bootsim::run_bootstate(s.sim, {"retry", "app-v2"});
  REQUIRE(retried.has_value());
  s.transcript += "  retry exit " + std::to_string(retried->exit) + ": " + retried->output + "\n";
  CHECK_MESSAGE(retried->exit == 0, s.transcript);
  CHECK(retried->output.find("re-armed: " + id2 + "+3-0.conf") != std::string::npos);
  CHECK(s.entry_file(gen2) == id2 + "+3-0.conf");

  const BootRecord again = s.boot();
  CHECK_MESSAGE(again.firmware.generation == gen2, s.transcript);
  CHECK(again.outcome == BootOutcome::Complete);
  CHECK(s.entry_file(gen2) == id2 + ".conf");
  const auto status = s.json();
  CHECK(at(status, "last_good") == gen2);
  const auto* app = find_by_id(status, "migrations", "app-v2");
  REQUIRE(app != nullptr);
  CHECK(at(*app, "state") == "applied");

  // A second retry has nothing to re-arm and is refused as usual (not failed).
  auto twice = bootsim::run_bootstate(s.sim, {"retry", "app-v2"});
  REQUIRE(twice.has_value());
  CHECK(twice->exit == 2);
  CHECK(s.entry_file(gen1) == bootsim::default_entry_id(gen1) + ".conf");
}

}  // namespace

TEST_CASE("retry re-arms the failed generation's entry, and the next boot completes it") {
  Scenario s("retry-rearm");
  fail_fix_retry_boot(s);
}

TEST_CASE("XBOOTLDR: entries on $BOOT are counted, marked bad and re-armed there") {
  Scenario s("xbootldr");
  // nixpkgs' xbootldrMountPoint layout: ESP at /efi (loader.conf, bootstate's state), entries
  // and kernels on the XBOOTLDR partition at /boot; bootstate is given --boot /boot.
  s.tree.esp = "/efi";
  s.tree.boot = "/boot";
  REQUIRE(bootsim::init_tree(s.tree));
  std::filesystem::remove(s.path("boot/loader/loader.conf"));
  s.sim.loader = bootsim::loader_options(s.tree);
  fail_fix_retry_boot(s);
  CHECK(s.exists("efi/bootstate"));
  CHECK_FALSE(s.exists("boot/bootstate"));
  CHECK_FALSE(s.exists("efi/loader/entries"));
}

// Also the ESP: /boot holds loader/entries too, and taking it for the ESP would put the state
// there (found: ESP discovery took the first candidate with loader/).
TEST_CASE("XBOOTLDR: without --esp/--boot, /efi is the ESP and a separate /boot is $BOOT") {
  Scenario s("xbootldr-discovered");
  s.tree.esp = "/efi";
  s.tree.boot = "/boot";
  std::filesystem::remove_all(s.path("boot"));
  std::filesystem::create_directories(s.path("boot"));
  // A file system of its own, as the XBOOTLDR partition is (needs root: skipped otherwise).
  if (::mount("bootstate-xbootldr", s.path("boot").c_str(), "tmpfs", 0, "mode=0700") != 0) {
    WARN_MESSAGE(false, "skipped: cannot mount a tmpfs on " << s.path("boot"));
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{s.path("boot")};
  REQUIRE(bootsim::init_tree(s.tree));
  s.sim.loader = bootsim::loader_options(s.tree);
  s.sim.pass_partitions = false;
  fail_fix_retry_boot(s);
  CHECK(s.exists("efi/bootstate"));
  CHECK_FALSE(s.exists("boot/bootstate"));
}

// Found by this test: with --boot naming the ESP through a symlink (or any second path to the
// same directory), every entry was seen twice, and a booted entry without a counter (a blessed
// generation) was "on both partitions": the booted entry unknown and boot counting impossible
// on every boot.
TEST_CASE("XBOOTLDR: --boot that is the ESP under another name is the ESP") {
  Scenario s("xbootldr-symlink");
  std::filesystem::create_directory_symlink("boot", s.path("xboot"));
  s.sim.loader = bootsim::loader_options(s.tree);
  s.sim.loader.boot = "/xboot";
  const std::string gen1 = s.install("aaaa1111-gen1", 1, plan({}), "");
  const BootRecord first = s.boot();
  CHECK_MESSAGE(first.outcome == BootOutcome::Complete, s.transcript);
  for (const auto& phase : first.phases) {
    CHECK_MESSAGE(phase.output.find("booted entry is unknown") == std::string::npos, phase.output);
  }
  const auto status = s.json();
  CHECK(at(status, "last_good") == gen1);
  CHECK(at(status, "booted.counting") == "off");  // systemd-boot, an entry without counter
}

// Power cuts around each boot-loader rename (issue #13, "around each boot-loader rename"):
// the state is committed first, then the entry renamed, so a cut lands between the two
// (BOOTSTATE_TEST_CRASH_AT=loader:N:before) or just after the rename (loader:N:after). Either
// way the machine must end where an uncut run would have: the failed generation fallen back
// from, the good one blessed, the retried one booted again.
#include <cstdlib>

#include "tests/scenarios/scenario.hpp"

using namespace scenarios;
using bootsim::BootOutcome;

namespace {

// BOOTSTATE_TEST_CRASH_AT for the bootstate processes started while it lives.
struct CrashAt {
  explicit CrashAt(const std::string& spec) {
    ::setenv("BOOTSTATE_TEST_CRASH_AT", spec.c_str(), 1);
  }
  ~CrashAt() { ::unsetenv("BOOTSTATE_TEST_CRASH_AT"); }
  CrashAt(const CrashAt&) = delete;
  CrashAt& operator=(const CrashAt&) = delete;
};

constexpr int kKilled = 128 + 9;  // SIGKILL: the hook's power cut

std::string install_gen1(Scenario& s) {
  const std::string gen1 = s.install("aaaa1111-gen1", 1, plan({}), "+3-0");
  REQUIRE(s.boot().outcome == BootOutcome::Complete);
  return gen1;
}

// Generation 2, whose post-activation verification passes only once var/lib/app/fixed exists.
// With a backup of var/lib/app, so that falling back undoes it.
std::string install_gen2(Scenario& s) {
  s.write("var/lib/app/data.txt", "version 1\n");
  return s.install(
      "bbbb2222-gen2", 2,
      plan({migration("app-v2",
                      {command_step("verify", "post-activation",
                                    {"/usr/bin/test", "-e", "@ROOT@/var/lib/app/fixed"})},
                      R"(,"backup":["/var/lib/app"])")}),
      "+3-0");
}

bootsim::CommandResult retry(Scenario& s, const std::string& id) {
  auto result = bootsim::run_bootstate(s.sim, {"retry", id});
  REQUIRE(result.has_value());
  s.transcript += "  retry exit " + std::to_string(result->exit) + ": " + result->output + "\n";
  return *result;
}

// Boots until `generation` boots and completes; at most `limit` boots.
void boot_until_complete(Scenario& s, const std::string& generation, int limit) {
  for (int i = 0; i < limit; ++i) {
    const BootRecord record = s.boot();
    if (record.firmware.generation == generation && record.outcome == BootOutcome::Complete) {
      return;
    }
  }
  FAIL_CHECK("no complete boot of " << generation << " in " << limit << " boots\n" << s.transcript);
}

}  // namespace

// Found by this test: the retry was committed (the migration pending again) but the entry stayed
// +0-1; running `retry` again was refused ("has not failed (it is pending)") without re-arming,
// so systemd-boot skipped the generation for good and the retry could never run.
TEST_CASE("retry: a power cut between the commit and the re-arm, then retry again re-arms") {
  Scenario s("cut-retry-rearm");
  install_gen1(s);
  const std::string gen2 = install_gen2(s);
  const std::string id2 = bootsim::default_entry_id(gen2);
  REQUIRE(s.boot().outcome == BootOutcome::PhaseFailed);
  REQUIRE(s.entry_file(gen2) == id2 + "+0-1.conf");
  s.write("var/lib/app/fixed", "yes\n");

  {
    CrashAt cut("loader:1:before");
    CHECK(retry(s, "app-v2").exit == kKilled);
  }
  CHECK(s.entry_file(gen2) == id2 + "+0-1.conf");  // the rename did not happen
  const auto* app = find_by_id(s.json(), "migrations", "app-v2");
  REQUIRE(app != nullptr);
  CHECK(at(*app, "state") == "pending");  // the retry did

  const auto again = retry(s, "app-v2");
  CHECK_MESSAGE(again.exit == 0, s.transcript);
  CHECK(again.output.find("re-armed: " + id2 + "+3-0.conf") != std::string::npos);
  CHECK(s.entry_file(gen2) == id2 + "+3-0.conf");
  boot_until_complete(s, gen2, 1);
  CHECK(s.entry_file(gen2) == id2 + ".conf");

  // Nothing left to re-arm or retry: refused as before.
  CHECK(retry(s, "app-v2").exit == 2);
}

TEST_CASE("retry: a power cut before the commit or just after the re-arm") {
  Scenario s("cut-retry-edges");
  install_gen1(s);
  const std::string gen2 = install_gen2(s);
  const std::string id2 = bootsim::default_entry_id(gen2);
  REQUIRE(s.boot().outcome == BootOutcome::PhaseFailed);
  s.write("var/lib/app/fixed", "yes\n");
  {
    CrashAt cut("1:before");  // the retry's commit never written
    CHECK(retry(s, "app-v2").exit == kKilled);
  }
  CHECK(s.entry_file(gen2) == id2 + "+0-1.conf");
  {
    CrashAt cut("loader:1:after");  // committed and renamed, killed before saying so
    CHECK(retry(s, "app-v2").exit == kKilled);
  }
  CHECK(s.entry_file(gen2) == id2 + "+3-0.conf");
  boot_until_complete(s, gen2, 1);
  CHECK(s.entry_file(gen2) == id2 + ".conf");
}

TEST_CASE("mark bad: a power cut around the rename still falls back, and undoes nothing twice") {
  for (const char* spec : {"loader:1:before", "loader:1:after"}) {
    CAPTURE(spec);
    Scenario s(std::string("cut-mark-bad-") + (spec[9] == 'b' ? "before" : "after"));
    const std::string gen1 = install_gen1(s);
    const std::string gen2 = install_gen2(s);
    const std::string id2 = bootsim::default_entry_id(gen2);
    {
      CrashAt cut(spec);
      const BootRecord cut_boot = s.boot();
      CHECK(cut_boot.firmware.generation == gen2);
      CHECK_MESSAGE(cut_boot.outcome == BootOutcome::PowerCut, s.transcript);
    }
    // Before: the entry still has tries and is booted again; bootstate must fail it again and
    // fall back. After: it is bad already and generation 1 boots.
    boot_until_complete(s, gen1, 4);
    CHECK(s.entry_file(gen2).find(id2 + "+0-") == 0);
    const auto status = s.json();
    CHECK(at(status, "last_good") == gen1);
    const auto* app = find_by_id(status, "migrations", "app-v2");
    REQUIRE(app != nullptr);
    CHECK(at(*app, "state") == "undone");  // the fallback restored the backup, once
    CHECK(s.read("var/lib/app/data.txt") == "version 1\n");
  }
}

TEST_CASE("bless: a power cut around marking good still ends blessed and good") {
  for (const char* spec : {"loader:1:before", "loader:1:after"}) {
    CAPTURE(spec);
    Scenario s(std::string("cut-bless-") + (spec[9] == 'b' ? "before" : "after"));
    install_gen1(s);
    s.write("var/lib/app/fixed", "yes\n");
    const std::string gen2 = install_gen2(s);
    const std::string id2 = bootsim::default_entry_id(gen2);
    {
      CrashAt cut(spec);
      const BootRecord cut_boot = s.boot();
      CHECK(cut_boot.firmware.generation == gen2);
      CHECK_MESSAGE(cut_boot.outcome == BootOutcome::PowerCut, s.transcript);
    }
    boot_until_complete(s, gen2, 2);
    CHECK(s.entry_file(gen2) == id2 + ".conf");
    const auto status = s.json();
    CHECK(at(status, "last_good") == gen2);
    CHECK(at(status, "attempt.state") == "complete");
    const auto* app = find_by_id(status, "migrations", "app-v2");
    REQUIRE(app != nullptr);
    CHECK(at(*app, "state") == "applied");
  }
}

TEST_CASE("re-arm after progress: a power cut around it costs at most a try, then completes") {
  for (const char* spec : {"loader:1:before", "loader:1:after"}) {
    CAPTURE(spec);
    Scenario s(std::string("cut-rearm-") + (spec[9] == 'b' ? "before" : "after"));
    install_gen1(s);
    s.write("var/lib/app/data.txt", "version 1\n");
    auto touch = [](const std::string& id, const std::string& phase, bool reboot) {
      return command_step(id, phase, {"/usr/bin/touch", "@ROOT@/var/lib/app/" + id},
                          reboot ? R"(,"reboot":true)" : "");
    };
    const std::string gen2 =
        s.install("cccc3333-gen2", 2,
                  plan({migration("long", {touch("s1", "initrd-pre-mount", true),
                                           touch("s2", "post-activation", true),
                                           touch("s3", "post-activation", false)})}),
                  "+2-0");
    const std::string id2 = bootsim::default_entry_id(gen2);
    {
      CrashAt cut(spec);  // the first boot-loader change of gen2's first boot: the re-arm
      const BootRecord cut_boot = s.boot();
      CHECK(cut_boot.firmware.generation == gen2);
      CHECK_MESSAGE(cut_boot.outcome == BootOutcome::PowerCut, s.transcript);
    }
    boot_until_complete(s, gen2, 4);
    CHECK(s.entry_file(gen2) == id2 + ".conf");
    for (const char* step : {"s1", "s2", "s3"}) CHECK(s.exists(std::string("var/lib/app/") + step));
    const auto status = s.json();
    CHECK(at(status, "last_good") == gen2);
    const auto* long_migration = find_by_id(status, "migrations", "long");
    REQUIRE(long_migration != nullptr);
    CHECK(at(*long_migration, "state") == "applied");
  }
}

// Scenarios (a) and (e): a required step fails in post-activation, the next boot falls back to
// the previous generation, and the failed attempt's backup is restored there.
#include "tests/scenarios/scenario.hpp"

using namespace scenarios;
using bootsim::BootOutcome;
using bootsim::ChosenBy;
using bootsim::LoaderVersion;

namespace {

// Generation 1 with an empty plan, booted once: it becomes the last good generation.
std::string install_good_gen1(Scenario& s, const std::string& counter) {
  s.write("var/lib/app/data.txt", "version 1\n");
  const std::string gen1 = s.install("aaaa1111-gen1", 1, plan({}), counter);
  const BootRecord first = s.boot();
  CHECK(first.outcome == BootOutcome::Complete);
  CHECK(first.firmware.generation == gen1);
  return gen1;
}

// Generation 2: converts the app data (backup first), then a verification that fails.
std::string install_failing_gen2(Scenario& s, const std::string& counter) {
  return s.install(
      "bbbb2222-gen2", 2,
      plan({migration("app-v2",
                      {command_step("convert", "post-activation",
                                    {"/usr/bin/cp", "@ROOT@/var/lib/app/data.txt",
                                     "@ROOT@/var/lib/app/data.v2"}),
                       command_step("mark", "post-activation",
                                    {"/usr/bin/touch", "@ROOT@/var/lib/app/converted"}),
                       command_step("verify", "post-activation", {"/bin/false"})},
                      R"(,"backup":["/var/lib/app"])")}),
      counter);
}

void check_failure_status(Scenario& s, const std::string& gen2) {
  const auto status = s.json();
  CHECK(at(status, "attempt.generation") == gen2);
  CHECK(at(status, "attempt.state") == "failed");
  const auto* app = find_by_id(status, "migrations", "app-v2");
  REQUIRE_MESSAGE(app != nullptr, s.transcript);
  CHECK(at(*app, "state") == "failed");
  const auto* verify = find_by_id(*app, "steps", "verify");
  REQUIRE(verify != nullptr);
  CHECK(at(*verify, "state") == "failed");
  CHECK(at(*verify, "attempts") == "1");
  // Which step and why: the message must say something (exit status of /bin/false).
  CHECK(at(*verify, "message").size() > 0);
  CHECK(at(*verify, "message") != "<missing>");
  const auto* convert = find_by_id(*app, "steps", "convert");
  REQUIRE(convert != nullptr);
  CHECK(at(*convert, "state") == "done");
}

void check_undone_on_gen1(Scenario& s, const BootRecord& fallback, const std::string& gen1) {
  CHECK(fallback.firmware.generation == gen1);
  CHECK(fallback.outcome == BootOutcome::Complete);
  // The backup of /var/lib/app is back: the conversion's files are gone, the data unchanged.
  CHECK_FALSE(s.exists("var/lib/app/converted"));
  CHECK_FALSE(s.exists("var/lib/app/data.v2"));
  CHECK(s.read("var/lib/app/data.txt") == "version 1\n");
  const auto status = s.json();
  CHECK(at(status, "booted.generation") == gen1);
  CHECK(at(status, "last_good") == gen1);
  const auto* app = find_by_id(status, "migrations", "app-v2");
  REQUIRE_MESSAGE(app != nullptr, s.transcript);
  CHECK(at(*app, "state") == "undone");
}

void failed_step_falls_back(LoaderVersion version, const std::string& name) {
  Scenario s(name);
  INFO(s.transcript);
  s.sim.loader.version = version;
  const std::string gen1 = install_good_gen1(s, "+3-0");
  const std::string id1 = bootsim::default_entry_id(gen1);
  CHECK(s.entry_file(gen1) == id1 + ".conf");  // blessed by the first boot

  const std::string gen2 = install_failing_gen2(s, "+3-0");
  const std::string id2 = bootsim::default_entry_id(gen2);
  const BootRecord failed = s.boot();
  CHECK(failed.firmware.generation == gen2);
  CHECK(failed.firmware.file_after == id2 + "+2-1.conf");
  CHECK(failed.outcome == BootOutcome::PhaseFailed);
  CHECK(failed.outcome_detail == "post-activation");
  CHECK_FALSE(failed.bless.has_value());
  // bootstate marked the booted entry bad: no tries left, the one done kept.
  CHECK(s.entry_file(gen2) == id2 + "+0-1.conf");
  CHECK(s.exists("var/lib/app/converted"));
  check_failure_status(s, gen2);

  // The very next boot: the bad entry sorts last, systemd-boot picks generation 1.
  const BootRecord fallback = s.boot();
  CHECK(fallback.firmware.chosen_by == ChosenBy::DefaultPattern);
  check_undone_on_gen1(s, fallback, gen1);
  CHECK(s.entry_file(gen2) == id2 + "+0-1.conf");
}

void no_counting_uses_one_shot(LoaderVersion version, const std::string& name) {
  Scenario s(name);
  INFO(s.transcript);
  s.sim.loader.version = version;
  const std::string gen1 = install_good_gen1(s, "");
  const std::string gen2 = install_failing_gen2(s, "");
  const std::string id2 = bootsim::default_entry_id(gen2);

  const BootRecord failed = s.boot();
  CHECK(failed.firmware.generation == gen2);
  CHECK_FALSE(failed.firmware.boot_count_path.has_value());
  CHECK(failed.outcome == BootOutcome::PhaseFailed);
  CHECK(s.entry_file(gen2) == id2 + ".conf");  // nothing to mark without a counter
  check_failure_status(s, gen2);

  // systemd-boot matches LoaderEntryOneShot against its entry ids ("nixos-….conf", in 252
  // with the counter): the one-shot must name generation 1's entry that way to be used.
  const BootRecord fallback = s.boot();
  CHECK(fallback.firmware.one_shot.has_value());
  CHECK(fallback.firmware.chosen_by == ChosenBy::OneShot);
  check_undone_on_gen1(s, fallback, gen1);
}

}  // namespace

TEST_CASE("(a) a failed required step falls back to the previous generation on the next boot") {
  failed_step_falls_back(LoaderVersion::V252, "a-failed-step");
}

TEST_CASE("(a257) the same with systemd-boot 257's LoaderEntrySelected without counter") {
  failed_step_falls_back(LoaderVersion::V257, "a257-failed-step");
}

TEST_CASE("(e) without boot counting a failure sets the one-shot to the last good entry") {
  no_counting_uses_one_shot(LoaderVersion::V252, "e-no-counting");
}

TEST_CASE("(e257) the same with systemd-boot 257") {
  no_counting_uses_one_shot(LoaderVersion::V257, "e257-no-counting");
}

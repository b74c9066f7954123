// Writes a --root tree for benchmark (b): a plan with N migrations, all applied, and a state
// with their records and a full history, committed through the real store.
//   make_big_state DIR N
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/plan.hpp"
#include "core/slot_files.hpp"
#include "core/store.hpp"

using namespace bootstate;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_big_state DIR N\n");
    return 2;
  }
  const std::string root = argv[1];
  const int count = std::atoi(argv[2]);
  const std::string generation = "/nix/store/bench-gen";
  std::filesystem::create_directories(root + generation + "/bootstate");
  std::filesystem::create_directories(root + "/boot/loader/entries");
  std::filesystem::create_directories(root + "/proc/sys/kernel/random");
  std::ofstream(root + "/proc/cmdline") << "init=" << generation << "/init\n";
  std::ofstream(root + "/proc/sys/kernel/random/boot_id") << "bench-boot\n";

  std::string plan_text = R"({"schema":1,"generation":")" + generation + R"(","migrations":[)";
  for (int i = 0; i < count; ++i) {
    if (i) plan_text += ",";
    plan_text += fmt::format(
        R"({{"id":"m{}","description":"migration {}","policy":"required","steps":[)"
        R"({{"id":"a","phase":"post-activation","kind":"command","command":["/bin/true"]}},)"
        R"({{"id":"b","phase":"post-activation","kind":"command","command":["/bin/true"]}},)"
        R"({{"id":"c","phase":"post-activation","kind":"command","command":["/bin/true"]}}]}})",
        i, i);
  }
  plan_text += "]}";
  std::ofstream(root + generation + "/bootstate/plan.json") << plan_text;
  auto plan = parse_plan(plan_text, "bench plan");
  if (!plan) {
    std::fprintf(stderr, "%s\n", plan.error().message.c_str());
    return 1;
  }

  State state;
  for (const Migration& migration : plan->migrations) {
    MigrationRecord record;
    record.id = migration.id;
    record.state = MigrationState::Applied;
    record.digest = migration.digest;
    record.definition_json = migration.definition_json;
    record.generation = generation;
    record.attempt = 64;
    for (const Step& step : migration.steps) {
      StepRecord step_record;
      step_record.id = step.id;
      step_record.state = StepState::Done;
      step_record.attempts = 1;
      step_record.exit_status = 0;
      step_record.message = "exit status 0";
      step_record.boot_id = "bench-boot-old";
      record.steps.push_back(step_record);
    }
    state.migrations.push_back(record);
  }
  for (std::uint64_t i = 1; i <= kHistoryLimit; ++i) {
    Attempt attempt;
    attempt.number = i;
    attempt.generation = "/nix/store/older-" + std::to_string(i);
    attempt.plan_digest = "0000000000000000";
    attempt.state = AttemptState::Complete;
    attempt.boot_ids = {"a", "b"};
    state.history.push_back(attempt);
  }
  Attempt current;
  current.number = kHistoryLimit + 1;
  current.generation = generation;
  current.plan_digest = plan->digest;
  current.state = AttemptState::Complete;
  current.boot_ids = {"bench-boot-old"};
  state.attempt = current;
  state.last_good_generation = generation;
  state.next_attempt_number = kHistoryLimit + 2;

  SlotFiles slots(root + "/boot/bootstate");
  StateStore store(slots);
  if (auto committed = store.commit(state); !committed) {
    std::fprintf(stderr, "%s\n", committed.error().message.c_str());
    return 1;
  }
  return 0;
}

#include "tests/support/test_machine.hpp"

namespace bootstate::testing {

std::string plan_json(const std::string& generation, const std::string& migrations) {
  return R"({"schema":1,"generation":")" + generation + R"(","migrations":[)" + migrations + "]}";
}

std::string migration(const std::string& id, const std::string& steps, const std::string& extra,
                      const std::string& policy) {
  return R"({"id":")" + id + R"(","policy":")" + policy + R"(")" + extra + R"(,"steps":[)" + steps +
         "]}";
}

std::string command_step(const std::string& id, const std::string& phase,
                         const std::string& extra) {
  return R"({"id":")" + id + R"(","phase":")" + phase +
         R"(","kind":"command","command":["/bin/true"])" + extra + "}";
}

Plan must_parse(const std::string& json) {
  auto plan = parse_plan(json, "test plan");
  REQUIRE_MESSAGE(plan.has_value(), (plan ? "" : plan.error().message));
  return std::move(*plan);
}

TestMachine::TestMachine(FakeBootLoader boot_loader) : loader(std::move(boot_loader)) {}

Expected<PhaseResult> TestMachine::try_run(Phase phase) {
  StateStore durable(slots);
  StoreAccess store(durable);
  PhaseEffects effects;
  effects.store = &store;
  effects.boot_loader = &loader;
  effects.backups = root_mounted(phase) ? &backups : nullptr;
  effects.executors = {{StepKind::Command, &executor},
                       {StepKind::Storage, &executor},
                       {StepKind::Firmware, &executor}};
  effects.root = "/test-root";
  effects.jobs = jobs;
  BootFacts facts{boot_id_, booted.empty() ? plan_.generation : booted, now_usec,
                  booted.empty() ? "" : plan_.generation};
  now_usec += 1'000'000;
  return run_phase(phase, plan_, facts, effects);
}

PhaseResult TestMachine::run(Phase phase) {
  auto result = try_run(phase);
  REQUIRE_MESSAGE(result.has_value(), (result ? "" : result.error().message));
  return *result;
}

PhaseResult TestMachine::boot() {
  PhaseResult result;
  for (Phase phase : kAllPhases) {
    result = run(phase);
    if (result.exit != PhaseExit::Ok) break;
  }
  return result;
}

State TestMachine::state() {
  StateStore store(slots);
  auto loaded = store.load();
  REQUIRE_MESSAGE(loaded.has_value(), (loaded ? "" : loaded.error().message));
  return loaded->state;
}

}  // namespace bootstate::testing

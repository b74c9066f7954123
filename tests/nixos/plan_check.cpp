// plan_check FILE: parses FILE with the project's plan parser (core/plan.hpp) and prints either
// the migration/step summary or the error. Used by tests/nixos to check that what the NixOS
// module renders is what bootstate accepts.
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/plan.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: plan_check FILE\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot read " << argv[1] << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto plan = bootstate::parse_plan(text.str(), argv[1]);
  if (!plan) {
    std::cerr << plan.error().message << "\n";
    return 1;
  }
  std::cout << "generation " << plan->generation << "\n";
  for (const auto& migration : plan->migrations) {
    std::cout << "migration " << migration.id << " " << bootstate::to_string(migration.policy)
              << " digest " << migration.digest << "\n";
    for (const auto& step : migration.steps) {
      std::cout << "  step " << step.id << " " << bootstate::to_string(step.phase) << " "
                << bootstate::to_string(step.kind) << "\n";
    }
  }
  return 0;
}

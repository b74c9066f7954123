// bootsim: plays OVMF + systemd-boot 252 + the kernel + systemd around the real bootstate
// binary, one boot at a time, against a --root tree. docs/SIMULATOR.md describes the model.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/bootsim/machine.hpp"
#include "tests/bootsim/tree.hpp"

namespace {

using namespace bootsim;

constexpr std::string_view kUsage = R"(usage:
  bootsim setup --root DIR [--esp /boot] [--default PATTERN | --no-default] [--timeout N]
  bootsim add-generation --root DIR [--esp /boot] --toplevel /nix/store/…-nixos-system-…
          --number N [--plan FILE] [--counter +3-0|+3|none] [--entry-id ID]
  bootsim menu --root DIR [--esp /boot] [--systemd-version 252|257]
  bootsim [boot] --root DIR --bootstate PATH [--esp /boot] [--boots N] [--status] [--json-status]
          [--json-log FILE] [--systemd-version 252|257] [--explicit-plan] [--verbose]
          [--cut-power [BOOT:]before|after:PHASE]... [--panic-after-initrd[=GENERATION]]
exit status: 0 ok, 1 the simulation stopped (bootstate exited 2 or oddly, nothing to boot), 2 usage
)";

struct Args {
  std::string command = "boot";
  TreeOptions tree;
  GenerationSpec generation;
  std::string plan_file;
  SimOptions sim;
  int boots = 1;
  bool status = false;
  bool json_status = false;
  bool verbose = false;
  std::string json_log;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "bootsim: " << problem << "\n" << kUsage;
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args args;
  int i = 1;
  if (i < argc && argv[i][0] != '-') args.command = argv[i++];
  auto value = [&](const std::string& flag) -> std::string {
    if (i + 1 >= argc) usage(flag + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--root")
      args.tree.root = value(flag);
    else if (flag == "--esp")
      args.tree.esp = value(flag);
    else if (flag == "--default")
      args.tree.default_pattern = value(flag);
    else if (flag == "--no-default")
      args.tree.default_pattern.reset();
    else if (flag == "--timeout")
      args.tree.timeout = value(flag);
    else if (flag == "--toplevel")
      args.generation.toplevel = value(flag);
    else if (flag == "--number")
      args.generation.number = std::stoi(value(flag));
    else if (flag == "--plan")
      args.plan_file = value(flag);
    else if (flag == "--counter") {
      args.generation.counter = value(flag);
      if (args.generation.counter == "none") args.generation.counter.clear();
    } else if (flag == "--entry-id")
      args.generation.entry_id = value(flag);
    else if (flag == "--bootstate")
      args.sim.bootstate = value(flag);
    else if (flag == "--boots")
      args.boots = std::stoi(value(flag));
    else if (flag == "--status")
      args.status = true;
    else if (flag == "--json-status")
      args.json_status = true;
    else if (flag == "--verbose")
      args.verbose = true;
    else if (flag == "--json-log")
      args.json_log = value(flag);
    else if (flag == "--explicit-plan")
      args.sim.explicit_plan = true;
    else if (flag == "--systemd-version") {
      const std::string version = value(flag);
      if (version != "252" && version != "257") usage("--systemd-version is 252 or 257");
      args.sim.loader.version = version == "252" ? LoaderVersion::V252 : LoaderVersion::V257;
    } else if (flag == "--cut-power") {
      const auto cut = parse_power_cut(value(flag));
      if (!cut) usage("--cut-power takes [BOOT:]before:PHASE or [BOOT:]after:PHASE");
      args.sim.power_cuts.push_back(*cut);
    } else if (flag == "--panic-after-initrd") {
      args.sim.panic_every_boot = true;
    } else if (flag.starts_with("--panic-after-initrd=")) {
      args.sim.panic_generations.push_back(flag.substr(flag.find('=') + 1));
    } else {
      usage("unknown argument " + flag);
    }
  }
  if (args.tree.root.empty()) usage("--root is required");
  args.sim.loader.root = args.tree.root;
  args.sim.loader.esp = args.tree.esp;
  return args;
}

int fail(const bootstate::Error& error) {
  std::cerr << "bootsim: " << error.message << "\n";
  return 1;
}

std::string indent(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::string out;
  while (std::getline(lines, line)) out += "    " + line + "\n";
  return out;
}

int boot(const Args& args) {
  if (args.sim.bootstate.empty()) usage("--bootstate is required");
  std::ofstream log;
  if (!args.json_log.empty()) {
    log.open(args.json_log, std::ios::app);
    if (!log)
      return fail(bootstate::make_error(bootstate::ErrorCode::Io, "open {}", args.json_log));
  }
  // Boot numbers continue across invocations: the count lives in the tree, outside every
  // directory bootstate uses.
  const std::string counter_file = args.tree.root + "/.bootsim-boots";
  int done = 0;
  std::ifstream(counter_file) >> done;
  for (int number = done + 1; number <= done + args.boots; ++number) {
    auto record = simulate_boot(args.sim, number);
    if (!record) return fail(record.error());
    std::ofstream(counter_file, std::ios::trunc) << number << "\n";
    std::cout << summary_line(*record) << "\n";
    if (args.verbose) {
      for (const auto& phase : record->phases) {
        if (!phase.output.empty())
          std::cout << "  [" << to_string(phase.phase) << "]\n" << indent(phase.output);
      }
    }
    if (log.is_open()) log << json_record(*record) << "\n" << std::flush;
    if (args.status || args.json_status) {
      std::vector<std::string> status_args;
      if (args.json_status) status_args.push_back("--json");
      status_args.push_back("status");
      auto status = run_bootstate(args.sim, status_args);
      if (!status) return fail(status.error());
      std::cout << indent(status->output);
      if (status->exit != 0) std::cout << "    (bootstate status exited " << status->exit << ")\n";
    }
    std::cout << std::flush;
  }
  return 0;
}

int menu(const Args& args) {
  auto entries = load_entries(args.sim.loader);
  if (!entries) return fail(entries.error());
  for (const auto& entry : *entries) {
    std::cout << fmt::format("{:<40} id={} tries_left={} generation={}\n", entry.file_name,
                             entry.id, entry.tries_left(), init_generation(entry.options));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.command == "setup") {
    auto done = init_tree(args.tree);
    return done ? 0 : fail(done.error());
  }
  if (args.command == "add-generation") {
    GenerationSpec spec = args.generation;
    if (!args.plan_file.empty()) {
      std::ifstream in(args.plan_file);
      if (!in) usage("cannot read " + args.plan_file);
      std::ostringstream text;
      text << in.rdbuf();
      spec.plan_json = text.str();
    }
    auto name = add_generation(args.tree, spec);
    if (!name) return fail(name.error());
    std::cout << *name << "\n";
    return 0;
  }
  if (args.command == "menu") return menu(args);
  if (args.command == "boot") return boot(args);
  usage("unknown command " + args.command);
}

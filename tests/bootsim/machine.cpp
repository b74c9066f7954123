#include "tests/bootsim/machine.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "tests/bootsim/efivarfs.hpp"

namespace bootsim {
namespace fs = std::filesystem;
using bootstate::ErrorCode;
using bootstate::make_error;

std::string_view to_string(SimPhase phase) {
  switch (phase) {
    case SimPhase::InitrdPreMount:
      return "initrd-pre-mount";
    case SimPhase::PreSwitchRoot:
      return "pre-switch-root";
    case SimPhase::PostActivation:
      return "post-activation";
  }
  return "?";
}

std::optional<SimPhase> parse_sim_phase(std::string_view text) {
  for (const SimPhase phase : kPhases) {
    if (to_string(phase) == text) return phase;
  }
  return std::nullopt;
}

std::optional<PowerCut> parse_power_cut(std::string_view text) {
  PowerCut cut;
  if (const auto colon = text.find(':');
      colon != std::string_view::npos && colon > 0 &&
      std::all_of(text.begin(), text.begin() + colon, ::isdigit)) {
    cut.boot = std::stoi(std::string(text.substr(0, colon)));
    text.remove_prefix(colon + 1);
  }
  if (text.starts_with("before:")) {
    cut.before = true;
  } else if (text.starts_with("after:")) {
    cut.before = false;
  } else {
    return std::nullopt;
  }
  const auto phase = parse_sim_phase(text.substr(text.find(':') + 1));
  if (!phase) return std::nullopt;
  cut.phase = *phase;
  return cut;
}

std::string_view to_string(BootOutcome outcome) {
  switch (outcome) {
    case BootOutcome::Complete:
      return "complete";
    case BootOutcome::RebootRequested:
      return "reboot-requested";
    case BootOutcome::PhaseFailed:
      return "phase-failed";
    case BootOutcome::PowerCut:
      return "power-cut";
    case BootOutcome::Panic:
      return "panic";
  }
  return "?";
}

Expected<CommandResult> run_bootstate(const SimOptions& options,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> argv = {options.bootstate, "--root", options.loader.root};
  if (options.pass_partitions) {
    argv.push_back("--esp");
    argv.push_back(options.loader.esp);
  }
  if (!options.loader.boot.empty() && options.pass_partitions) {
    argv.push_back("--boot");
    argv.push_back(options.loader.boot);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::Io, "pipe: {}", bootstate::errno_text(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(ErrorCode::Io, "fork: {}", bootstate::errno_text(errno));
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execv(raw[0], raw.data());
    const std::string message =
        "bootsim: exec " + argv[0] + ": " + bootstate::errno_text(errno) + "\n";
    (void)!::write(STDERR_FILENO, message.data(), message.size());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  CommandResult result;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n > 0) {
      result.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return make_error(ErrorCode::Io, "waitpid: {}", bootstate::errno_text(errno));
  }
  result.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Expected<BlessOutcome> bless_good(const LoaderOptions& loader, const std::string& boot_count_path) {
  // LoaderBootCountPath is "\loader\entries\NAME+L-D.conf" relative to the partition the
  // entry was read from ($BOOT with XBOOTLDR, else the ESP).
  std::string path = boot_count_path;
  std::replace(path.begin(), path.end(), '\\', '/');
  const auto slash = path.rfind('/');
  const std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  const fs::path dir = fs::path(boot_dir(loader)) / path.substr(1, slash == 0 ? 0 : slash - 1);
  const auto plan = plan_bless(file);
  if (!plan) return BlessOutcome::NoCounter;
  std::error_code ec;
  // rename_noreplace: an existing good name means "operation already executed".
  if (fs::exists(dir / plan->target, ec)) return BlessOutcome::AlreadyGood;
  for (const auto& [source, outcome] : {std::pair{plan->source, BlessOutcome::Renamed},
                                        {plan->bad_source, BlessOutcome::RenamedFromBad}}) {
    if (!fs::exists(dir / source, ec)) continue;
    fs::rename(dir / source, dir / plan->target, ec);
    if (ec) return make_error(ErrorCode::Io, "bless: rename {}: {}", source, ec.message());
    return outcome;
  }
  return BlessOutcome::Gone;
}

namespace {

bool cut_applies(const PowerCut& cut, int number, SimPhase phase, bool before) {
  return (cut.boot == 0 || cut.boot == number) && cut.phase == phase && cut.before == before;
}

bool panics(const SimOptions& options, const std::string& generation) {
  if (options.panic_every_boot) return true;
  return std::any_of(
      options.panic_generations.begin(), options.panic_generations.end(),
      [&](const std::string& g) { return !g.empty() && generation.find(g) != std::string::npos; });
}

// The booted generation's initrd carries its plan at /etc/bootstate/plan.json.
Expected<void> install_initrd_plan(const SimOptions& options, const std::string& generation) {
  const fs::path root = options.loader.root;
  const fs::path target = root / "etc/bootstate/plan.json";
  std::error_code ec;
  fs::remove(target, ec);
  if (generation.empty()) return {};
  const fs::path source = root / generation.substr(1) / "bootstate/plan.json";
  if (!fs::exists(source, ec)) return {};
  fs::create_directories(target.parent_path(), ec);
  fs::copy_file(source, target, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return make_error(ErrorCode::Io, "copy {} to {}: {}", source.string(), target.string(),
                      ec.message());
  return {};
}

std::vector<std::string> list_entries(const LoaderOptions& loader) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(entries_dir(loader), ec)) {
    names.push_back(item.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Expected<BootRecord> simulate_boot(const SimOptions& options, int number) {
  BootRecord record;
  record.number = number;
  auto firmware = firmware_boot(options.loader);
  if (!firmware) return firmware.error();
  record.firmware = std::move(*firmware);
  const std::string& generation = record.firmware.generation;
  if (auto installed = install_initrd_plan(options, generation); !installed)
    return installed.error();

  auto finish = [&](BootOutcome outcome, std::string detail) {
    record.outcome = outcome;
    record.outcome_detail = std::move(detail);
    record.entries_after = list_entries(options.loader);
    return record;
  };

  for (const SimPhase phase : kPhases) {
    if (phase == SimPhase::PostActivation && panics(options, generation)) {
      return finish(BootOutcome::Panic, "kernel panic after the initrd phases");
    }
    for (const auto& cut : options.power_cuts) {
      if (cut_applies(cut, number, phase, true)) {
        return finish(BootOutcome::PowerCut, "power cut before " + std::string(to_string(phase)));
      }
    }
    std::vector<std::string> args = options.extra_args;
    if (options.explicit_plan && !generation.empty()) {
      args.insert(args.end(), {"--plan", generation + "/bootstate/plan.json"});
    }
    args.insert(args.end(), {"run", "--phase", std::string(to_string(phase))});
    auto run = run_bootstate(options, args);
    if (!run) return run.error();
    record.phases.push_back(PhaseRun{phase, run->exit, run->output});
    if (run->exit == 4) return finish(BootOutcome::RebootRequested, std::string(to_string(phase)));
    // SIGKILL is how BOOTSTATE_TEST_CRASH_AT (cli/crash_hook.hpp) cuts the power mid-phase.
    if (run->exit == 128 + SIGKILL) {
      return finish(BootOutcome::PowerCut, "power cut during " + std::string(to_string(phase)));
    }
    if (run->exit == 1) return finish(BootOutcome::PhaseFailed, std::string(to_string(phase)));
    if (run->exit != 0) {
      return make_error(ErrorCode::Failed, "boot {}: bootstate run --phase {} exited {}:\n{}",
                        number, to_string(phase), run->exit, run->output);
    }
    for (const auto& cut : options.power_cuts) {
      if (cut_applies(cut, number, phase, false)) {
        return finish(BootOutcome::PowerCut, "power cut after " + std::string(to_string(phase)));
      }
    }
  }

  // boot-complete.target is reached; systemd-bless-boot.service runs only with a counter.
  if (record.firmware.boot_count_path) {
    auto blessed = bless_good(options.loader, *record.firmware.boot_count_path);
    if (!blessed) return blessed.error();
    record.bless = *blessed;
  }
  return finish(BootOutcome::Complete, "boot-complete.target reached");
}

}  // namespace bootsim

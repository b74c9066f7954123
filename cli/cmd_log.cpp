// `bootstate log [MIGRATION[/STEP]] [--attempt N] [--follow]`: the output of steps.
//
// Where output is (cli/cmd_run.cpp make_step_paths, stage2/process_output.cpp): every command or
// firmware step appends its stdout+stderr, bounded, to
//   DATA/logs/ATTEMPT-MIGRATION-STEP.log
// where DATA is /var/lib/bootstate for the root-mounted phases (pre-switch-root writes it through
// /sysroot, the same file after switch-root) and /run/bootstate in initrd-pre-mount (tmpfs: gone
// after the boot). The same lines go to the journal under SYSLOG_IDENTIFIER
// bootstate-MIGRATION-STEP, which is all that is left of an initrd-pre-mount step.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.hpp"
#include "cli/state_view.hpp"
#include "core/store_lock.hpp"

namespace bootstate::cli {
namespace {

constexpr auto kFollowPoll = std::chrono::milliseconds(250);

// One step that ran, and where its output is.
struct LoggedStep {
  std::string migration;
  std::string step;
  bool undo = false;
  std::optional<Phase> phase;  // from the recorded definition; unknown without one
  StepRecord record;
  std::uint64_t attempt = 0;
  std::string log_path;  // empty: no log file (initrd-pre-mount, a storage step, never ran)
};

std::optional<Phase> phase_of(const MigrationRecord& record, std::string_view step, bool undo) {
  auto definition = parse_migration_definition(record.definition_json);
  if (!definition) return std::nullopt;
  for (const Step& candidate : undo ? definition->undo : definition->steps) {
    if (candidate.id == step) return candidate.phase;
  }
  return std::nullopt;
}

// The names in a logs directory (none when it is missing), listed once per command: a step's
// logs are looked up among them for every step shown.
std::vector<std::string> names_in(const std::string& directory) {
  std::vector<std::string> names;
  DIR* listing = ::opendir(directory.c_str());
  if (listing == nullptr) return names;
  while (const dirent* entry = ::readdir(listing)) names.emplace_back(entry->d_name);
  ::closedir(listing);
  return names;
}

// Log files of one step by attempt number: DIR/N-MIGRATION-STEP.log for every N.
void add_log_files(std::map<std::uint64_t, std::string>& found, const std::string& directory,
                   const std::vector<std::string>& names, std::string_view migration,
                   std::string_view step) {
  const std::string suffix = fmt::format("-{}-{}.log", migration, step);
  for (std::string_view name : names) {
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) continue;
    std::string_view number = name.substr(0, name.size() - suffix.size());
    if (!std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        number.size() > 18) {
      continue;
    }
    found.emplace(std::stoull(std::string(number)), directory + "/" + std::string(name));
  }
}

class LogFinder {
 public:
  LogFinder(const Machine& machine, const State& state) : state_(state) {
    // Root-mounted phases first: that is where every log of an earlier boot is.
    for (const char* directory : {"/var/lib/bootstate/logs", "/run/bootstate/logs"}) {
      std::string path = machine.rooted(directory);
      directories_.emplace_back(path, names_in(path));
    }
    current_ = state.attempt ? state.attempt->number : 0;
  }

  // The step's log of attempt `wanted` (0: the current attempt's, else the newest there is).
  LoggedStep find(const MigrationRecord& record, const StepRecord& step, bool undo,
                  std::uint64_t wanted) const {
    LoggedStep logged{record.id, step.id, undo, phase_of(record, step.id, undo), step, 0, ""};
    std::map<std::uint64_t, std::string> files;
    for (const auto& [directory, names] : directories_)
      add_log_files(files, directory, names, record.id, step.id);
    const std::uint64_t preferred = wanted != 0 ? wanted : current_;
    if (auto exact = files.find(preferred); exact != files.end()) {
      logged.attempt = exact->first;
      logged.log_path = exact->second;
    } else if (wanted == 0 && !files.empty()) {
      logged.attempt = files.rbegin()->first;
      logged.log_path = files.rbegin()->second;
    } else {
      logged.attempt = wanted != 0 ? wanted : attempt_at(step.started_usec);
    }
    return logged;
  }

  // Every step that ran in attempt `number`: it has a log of that attempt, or its record says
  // this attempt started it (a step without a log file: initrd-pre-mount, storage).
  std::vector<LoggedStep> steps_of_attempt(std::uint64_t number) const {
    std::vector<LoggedStep> steps;
    for (const MigrationRecord& record : state_.migrations) {
      for (bool undo : {false, true}) {
        for (const StepRecord& step : undo ? record.undo_steps : record.steps) {
          LoggedStep logged = find(record, step, undo, number);
          bool ran_here = !logged.log_path.empty() || started_in(step, number);
          if (ran_here) steps.push_back(std::move(logged));
        }
      }
    }
    // The newest failure first (what the operator came for), then the rest newest first.
    std::stable_sort(steps.begin(), steps.end(), [](const LoggedStep& a, const LoggedStep& b) {
      bool a_failed = a.record.state == StepState::Failed;
      bool b_failed = b.record.state == StepState::Failed;
      if (a_failed != b_failed) return a_failed;
      return a.record.started_usec > b.record.started_usec;
    });
    return steps;
  }

  std::uint64_t current() const { return current_; }

  // The attempt whose time covers `usec` (a step's last start), 0 when none does. A step's
  // record carries no attempt number, and MigrationRecord::attempt moves on when a later
  // attempt undoes the migration: the attempts' start and end times are what tell.
  std::uint64_t attempt_at(std::int64_t usec) const {
    if (usec == 0) return 0;
    std::uint64_t found = 0;
    auto consider = [&](const Attempt& attempt) {
      bool inside = usec >= attempt.started_usec &&
                    (attempt.finished_usec == 0 || usec <= attempt.finished_usec);
      if (inside && attempt.number > found) found = attempt.number;
    };
    for (const Attempt& attempt : state_.history) consider(attempt);
    if (state_.attempt) consider(*state_.attempt);
    return found;
  }

  bool started_in(const StepRecord& step, std::uint64_t number) const {
    return number != 0 && attempt_at(step.started_usec) == number;
  }

  // The newest attempt before the current one that failed or was abandoned, 0 when none.
  std::uint64_t last_failed_attempt() const {
    std::uint64_t found = 0;
    for (const Attempt& attempt : state_.history) {
      if (attempt.number != current_ &&
          (attempt.state == AttemptState::Failed || attempt.state == AttemptState::Abandoned)) {
        found = std::max(found, attempt.number);
      }
    }
    return found;
  }

 private:
  const State& state_;
  // Root-mounted phases' logs first: the same attempt's file there wins.
  std::vector<std::pair<std::string, std::vector<std::string>>> directories_;
  std::uint64_t current_ = 0;
};

void out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string heading(const LoggedStep& logged) {
  std::string line = fmt::format("{}/{}{} · attempt {} · {} · {}", logged.migration, logged.step,
                                 logged.undo ? " (undo)" : "", logged.attempt,
                                 logged.phase ? to_string(*logged.phase) : "phase unknown",
                                 to_string(logged.record.state));
  if (!logged.record.message.empty() && logged.record.state == StepState::Failed) {
    line += " (" + logged.record.message + ")";
  }
  return line + "\n";
}

std::string journal_identifier(const LoggedStep& logged) {
  return fmt::format("bootstate-{}-{}", logged.migration, logged.step);
}

// No log file: the journal has the output. journalctl is run directly (no shell); when it is
// missing, or under --root (the journal is the host's, not the tree's), say where to look.
void print_from_journal(const Machine& machine, const LoggedStep& logged) {
  std::vector<std::string> argv = {"journalctl", "--no-pager", "--output=cat",
                                   "--identifier=" + journal_identifier(logged)};
  if (!logged.record.boot_id.empty()) argv.push_back("--boot=" + logged.record.boot_id);
  std::string hint;
  for (std::size_t i = 0; i < argv.size(); ++i) hint += (i ? " " : "") + argv[i];
  if (machine.options().root.empty()) {
    std::vector<char*> raw;  // built before fork: the child only execs
    raw.reserve(argv.size() + 1);
    for (std::string& word : argv) raw.push_back(word.data());
    raw.push_back(nullptr);
    std::fflush(stdout);
    pid_t child = ::fork();
    if (child == 0) {
      ::execvp(raw[0], raw.data());
      ::_exit(127);
    }
    int status = 0;
    if (child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0) {
      return;
    }
  }
  out(fmt::format("(no log file: this step's output is in the journal: {})\n", hint));
}

// What print_file_from printed: where the file ended, and its last byte ('\n' when none).
struct Printed {
  std::uint64_t offset = 0;
  char last = '\n';
};

// Prints the log from `offset` on, in pieces (never the whole file in memory: a log that is
// not bounded, such as one written by another tool, must not exhaust it). open/read, not
// std::ifstream: iostreams would link libstdc++'s locale into the program, whose start-up
// cost every boot pays (core/read_file.hpp). A symlink is not followed: the logs directory is
// root's, and bootstate writes regular files there only.
Expected<Printed> print_file_from(const std::string& path, std::uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) {
      return make_error(ErrorCode::InvalidInput, "{} is a symbolic link: not followed", path);
    }
    return make_error(ErrorCode::Io, "cannot open {}: {}", path, errno_text(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::InvalidInput, "{} is not a regular file", path);
  }
  Printed printed{offset, '\n'};
  char buffer[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, static_cast<off_t>(printed.offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out(std::string_view(buffer, static_cast<std::size_t>(n)));
    printed.offset += static_cast<std::uint64_t>(n);
    printed.last = buffer[n - 1];
  }
  ::close(fd);
  std::fflush(stdout);
  return printed;
}

void print_step(const Machine& machine, const LoggedStep& logged) {
  out(heading(logged));
  if (logged.log_path.empty()) {
    print_from_journal(machine, logged);
    return;
  }
  out("log: " + logged.log_path + "\n");
  auto printed = print_file_from(logged.log_path, 0);
  if (!printed) {
    out("(" + printed.error().message + ")\n");
    return;
  }
  if (printed->offset == 0) out("(the step printed nothing)\n");
  if (printed->last != '\n') out("\n");
}

// --follow: print the log as it grows until the step is no longer `running` in the state.
int follow_step(const Machine& machine, LoggedStep logged) {
  out(heading(logged));
  std::uint64_t offset = 0;
  for (;;) {
    // Looked at before the state is read: a run commits its step's end before it lets go of
    // the lock, so a free lock and then a step still `running` means nobody will end it.
    const bool run_alive = store_lock_held(machine.rooted(kStoreLockPath));
    auto snapshot = read_state(machine);
    if (!snapshot) return report_error(snapshot.error());
    const MigrationRecord* record = snapshot->state.find(logged.migration);
    const StepRecord* step = nullptr;
    if (record != nullptr) {
      for (const StepRecord& candidate : logged.undo ? record->undo_steps : record->steps) {
        if (candidate.id == logged.step) step = &candidate;
      }
    }
    const bool running = step != nullptr && step->state == StepState::Running;
    if (logged.log_path.empty() && record != nullptr && step != nullptr) {
      // The log appears when the step starts; the attempt may have changed meanwhile.
      logged = LogFinder(machine, snapshot->state).find(*record, *step, logged.undo, 0);
    }
    if (!logged.log_path.empty()) {
      auto printed = print_file_from(logged.log_path, offset);
      if (!printed) return report_error(printed.error());
      offset = printed->offset;
    }
    if (running && !run_alive) {
      out(
          fmt::format("-- {}/{} was interrupted: the state still says running, but no bootstate "
                      "run holds the store lock (a power cut or a kill); the next run of its "
                      "phase goes on with it --\n",
                      logged.migration, logged.step));
      return kExitOk;
    }
    if (!running) {
      if (step != nullptr) {
        out(fmt::format("-- {}/{} is {}{} --\n", logged.migration, logged.step,
                        to_string(step->state), step->message.empty() ? "" : ": " + step->message));
      }
      return kExitOk;
    }
    std::this_thread::sleep_for(kFollowPoll);
  }
}

}  // namespace

int log_command(const Machine& machine) {
  const Options& options = machine.options();
  auto snapshot = read_state(machine);
  if (!snapshot) return report_error(snapshot.error());
  const State& state = snapshot->state;
  LogFinder finder(machine, state);
  const std::uint64_t newest =
      std::max(state.next_attempt_number > 0 ? state.next_attempt_number - 1 : 0, finder.current());
  if (options.attempt > newest) {
    return report_error(
        Error{ErrorCode::InvalidInput,
              fmt::format("--attempt {}: there is no such attempt (the newest is {})",
                          options.attempt, newest)});
  }

  std::vector<LoggedStep> chosen;
  if (options.argument.empty()) {
    std::uint64_t number = options.attempt != 0 ? options.attempt : finder.current();
    chosen = finder.steps_of_attempt(number);
    if (options.follow) {
      std::erase_if(chosen,
                    [](const LoggedStep& s) { return s.record.state != StepState::Running; });
      if (chosen.empty()) {
        return report_error(
            Error{ErrorCode::InvalidInput, "--follow: no step is running: give MIGRATION/STEP"});
      }
    } else if (chosen.empty()) {
      out(number == 0 ? "No attempt yet: no step has run.\n"
                      : fmt::format("No step has run in attempt {}.\n", number));
      if (std::uint64_t failed = finder.last_failed_attempt();
          failed != 0 && options.attempt == 0) {
        out(fmt::format("Attempt {} failed: `bootstate log --attempt {}` shows its steps.\n",
                        failed, failed));
      }
      return kExitOk;
    }
  } else {
    const std::string& argument = options.argument;
    const auto slash = argument.find('/');
    const std::string migration_id = argument.substr(0, slash);
    const std::string step_id = slash == std::string::npos ? "" : argument.substr(slash + 1);
    const MigrationRecord* record = state.find(migration_id);
    if (record == nullptr) {
      return report_error(Error{ErrorCode::InvalidInput,
                                fmt::format("log: migration \"{}\" has not run on this machine "
                                            "(`bootstate status` lists the migrations)",
                                            migration_id)});
    }
    for (bool undo : {false, true}) {
      for (const StepRecord& step : undo ? record->undo_steps : record->steps) {
        if (!step_id.empty() && step.id != step_id) continue;
        LoggedStep logged = finder.find(*record, step, undo, options.attempt);
        if (step_id.empty() && logged.log_path.empty() && step.started_usec == 0) continue;
        if (options.attempt != 0 && logged.log_path.empty() &&
            !finder.started_in(step, options.attempt)) {
          continue;  // it did not run in the attempt asked for
        }
        chosen.push_back(std::move(logged));
      }
    }
    if (chosen.empty()) {
      return report_error(Error{
          ErrorCode::InvalidInput,
          step_id.empty()
              ? fmt::format("log: no step of migration \"{}\" has run", migration_id)
              : fmt::format(
                    "log: migration \"{}\" has no step \"{}\" that ran{}", migration_id, step_id,
                    options.attempt != 0 ? fmt::format(" in attempt {}", options.attempt) : "")});
    }
    if (options.follow && chosen.size() > 1) {
      std::erase_if(chosen,
                    [](const LoggedStep& s) { return s.record.state != StepState::Running; });
      if (chosen.size() != 1) {
        return report_error(Error{ErrorCode::InvalidInput,
                                  fmt::format("--follow: give one step (MIGRATION/STEP): {} has "
                                              "{} running",
                                              migration_id, chosen.empty() ? "none" : "several")});
      }
    }
  }
  if (options.follow) return follow_step(machine, chosen.front());
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    if (i != 0) out("\n");
    print_step(machine, chosen[i]);
  }
  return kExitOk;
}

}  // namespace bootstate::cli

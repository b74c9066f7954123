#include "cli/progress.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/read_file.hpp"

extern char** environ;

namespace bootstate::cli {
namespace {

// How often a running step is reported. BOOTSTATE_TEST_HEARTBEAT_MS shortens it for the tests
// (tests/cli/test_progress.py); unset, it is 10 s, often enough for a person at a console and
// rare enough to stay out of the journal's way.
std::chrono::milliseconds heartbeat_interval() {
  if (const char* configured = std::getenv("BOOTSTATE_TEST_HEARTBEAT_MS")) {
    int value = 0;
    auto [end, error] = std::from_chars(configured, configured + std::strlen(configured), value);
    if (error == std::errc{} && *end == '\0' && value > 0) return std::chrono::milliseconds(value);
  }
  return std::chrono::seconds(10);
}

// `plymouth display-message --text=TEXT`, run directly (no shell); best effort: a missing or
// failing plymouth client changes nothing else.
void plymouth_message(const std::string& text) {
  std::string argument = "--text=" + text;
  char program[] = "plymouth";
  char verb[] = "display-message";
  char* argv[] = {program, verb, argument.data(), nullptr};
  pid_t child = 0;
  if (::posix_spawnp(&child, program, nullptr, nullptr, argv, environ) != 0) return;
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

// One line on the console, as systemd writes its status there: opened for each line (a console
// that is not there costs nothing and stops nothing), never becoming bootstate's controlling
// terminal. Non-blocking, but a full output buffer is waited for, up to kConsoleWait: during
// boot the serial console is flooded (gettys, units starting), and a write then failed with
// EAGAIN and the line was lost (seen in the VM tier: the "started" line of a step missing). A
// console hung up under us (a getty's vhangup: EIO) is opened once more.
constexpr int kConsoleWaitSlices = 50;  // of 20 ms: at most 1 s per line
void console_line(const std::string& console, const std::string& line) {
  auto open_console = [&] {
    return ::open(console.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_APPEND);
  };
  int fd = open_console();
  if (fd < 0) return;
  std::string_view rest = line;
  bool reopened = false;
  for (int waited = 0; !rest.empty() && waited < kConsoleWaitSlices;) {
    const ssize_t written = ::write(fd, rest.data(), rest.size());
    if (written > 0) {
      rest.remove_prefix(static_cast<std::size_t>(written));
    } else if (written < 0 && errno == EINTR) {
      continue;
    } else if (written < 0 && errno == EIO && !reopened) {
      ::close(fd);
      reopened = true;
      if ((fd = open_console()) < 0) return;
    } else if (written < 0 && errno != EAGAIN) {
      break;
    } else {
      pollfd output{fd, POLLOUT, 0};
      ::poll(&output, 1, 20);
      ++waited;
    }
  }
  ::close(fd);
}

// The step ids out of the phase runner's event text ("migration \"M\" step \"S\": …"), for
// the start line before step_paths() names the step.
std::string label_of(std::string_view text) {
  auto colon = text.find("\": ");
  return std::string(colon == std::string_view::npos ? text : text.substr(0, colon + 1));
}

}  // namespace

std::string progress_file(const std::string& work_dir) {
  return work_dir + "/progress";
}

// read_file, not std::ifstream: iostreams would link libstdc++'s locale into the program,
// whose start-up cost every boot pays (core/read_file.hpp).
std::string read_progress(const std::string& path) {
  // The step writes it, possibly as another user (a `user` step owns its work directory): a
  // symlink planted there would show root's files on the console.
  auto text = read_untrusted_file(path, 256);
  if (!text) return "";
  const std::string line = text->substr(0, text->find('\n'));
  int percent = -1;
  auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), percent);
  if (error != std::errc{} || percent < 0 || percent > 100) return "";
  std::string_view rest(end, static_cast<std::size_t>(line.data() + line.size() - end));
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '%' || rest.front() == '\t')) {
    rest.remove_prefix(1);
  }
  if (rest.size() > 80) rest = rest.substr(0, 80);  // a status line, not a log
  return fmt::format("{} %{}{}", percent, rest.empty() ? "" : ", ", rest);
}

std::string elapsed_text(std::chrono::steady_clock::duration elapsed) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  if (seconds < 60) return fmt::format("{} s", seconds);
  if (seconds < 3600) return fmt::format("{} min {} s", seconds / 60, seconds % 60);
  return fmt::format("{} h {} min", seconds / 3600, seconds % 3600 / 60);
}

ProgressReporter::ProgressReporter(EventSink& inner, std::string plymouth_pid_file, bool to_stderr,
                                   std::string console)
    : inner_(inner),
      plymouth_pid_file_(std::move(plymouth_pid_file)),
      to_stderr_(to_stderr),
      console_(std::move(console)),
      interval_(heartbeat_interval()) {}

ProgressReporter::~ProgressReporter() {
  stop_heartbeat();
}

void ProgressReporter::report(const std::string& text) {
  inner_.status(text);
  if (to_stderr_) std::fprintf(stderr, "bootstate: %s\n", text.c_str());
  struct stat info {};
  if (!plymouth_pid_file_.empty() && ::stat(plymouth_pid_file_.c_str(), &info) == 0) {
    plymouth_message("bootstate: " + text);  // Plymouth owns the console while it runs
  } else if (!console_.empty()) {
    console_line(console_, "bootstate: " + text + "\n");
  }
}

void ProgressReporter::event(Event event, std::string_view text) {
  inner_.event(event, text);
  if (event == Event::StepStarted) {
    std::string label = label_of(text);
    bool start_heartbeat = false;
    {
      std::lock_guard lock(mutex_);
      running_.push_back(Running{label, {}, std::chrono::steady_clock::now()});
      start_heartbeat = !beating_;
      beating_ = true;
    }
    report(label + ": started");
    if (start_heartbeat) {
      if (heartbeat_.joinable()) heartbeat_.join();  // ended, after the last step before
      heartbeat_ = std::thread([this] { heartbeat_loop(); });
    }
  } else if (event == Event::StepDone || event == Event::StepFailed) {
    const std::string label = label_of(text);
    std::chrono::steady_clock::duration elapsed{};
    bool last = false;
    {
      std::lock_guard lock(mutex_);
      auto found = std::find_if(running_.begin(), running_.end(),
                                [&](const Running& step) { return step.label == label; });
      if (found == running_.end()) return;  // a check found the step applied: it never started
      elapsed = std::chrono::steady_clock::now() - found->started;
      running_.erase(found);
      last = running_.empty();
    }
    if (last) stop_heartbeat();
    report(fmt::format("{}: {} after {}", label, event == Event::StepDone ? "done" : "failed",
                       elapsed_text(elapsed)));
  }
}

void ProgressReporter::step_paths(std::string_view migration, std::string_view step,
                                  const std::string& work_dir) {
  const std::string label = fmt::format("migration \"{}\" step \"{}\"", migration, step);
  std::lock_guard lock(mutex_);
  for (Running& running : running_) {
    // "undo of migration …" ends with the same words.
    if (!running.label.ends_with(label)) continue;
    running.progress_path = progress_file(work_dir);
    // A percentage left by an earlier run of the step is not this run's.
    ::unlink(running.progress_path.c_str());
    return;
  }
  // Not a running step: paths for a check.
}

void ProgressReporter::heartbeat_loop() {
  std::unique_lock lock(mutex_);
  while (beating_) {
    if (wake_.wait_for(lock, interval_, [this] { return !beating_; })) break;
    std::vector<std::string> lines;
    const auto now = std::chrono::steady_clock::now();
    for (const Running& step : running_) {
      std::string line =
          fmt::format("{}: running for {}", step.label, elapsed_text(now - step.started));
      std::string percent = step.progress_path.empty() ? "" : read_progress(step.progress_path);
      if (!percent.empty()) line += ", " + percent;
      lines.push_back(std::move(line));
    }
    lock.unlock();
    for (const std::string& line : lines) report(line);
    lock.lock();
  }
}

void ProgressReporter::stop_heartbeat() {
  {
    std::lock_guard lock(mutex_);
    beating_ = false;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

}  // namespace bootstate::cli

// `bootstate metrics [--output FILE]`: the state in Prometheus' text exposition format, for
// node-exporter's textfile collector (docs/METRICS.md).
//
// Why a command and not `status --format=prometheus`: the collector reads every *.prom file in
// its directory whenever it is scraped, so the file must be replaced atomically (a temporary
// file renamed over it), which a shell redirection of `status` cannot do; and the metric names
// are a contract of their own (numbers for alerting), apart from status's words.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>

#include <cstdio>

#include "cli/commands.hpp"
#include "cli/state_view.hpp"
#include "cli/status_model.hpp"
#include "core/error.hpp"

namespace bootstate::cli {
namespace {

// Label values escape \, " and newline (the exposition format's rule).
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void metric(std::string& out, std::string_view name, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
}

std::string render_metrics(const StatusModel& model) {
  std::string out;
  metric(out, "bootstate_booted_info", "The booted generation and boot entry.");
  out += fmt::format("bootstate_booted_info{{generation=\"{}\",entry=\"{}\"}} 1\n",
                     label(model.booted_generation), label(model.booted_entry));
  metric(out, "bootstate_last_good_info", "The last generation that completed an attempt.");
  out += fmt::format("bootstate_last_good_info{{generation=\"{}\",entry=\"{}\"}} 1\n",
                     label(model.last_good), label(model.last_good_entry));

  metric(out, "bootstate_attempt_state",
         "1 for the state of the current (or last) attempt, 0 for the others; all 0 without one.");
  for (AttemptState state : {AttemptState::InProgress, AttemptState::Complete, AttemptState::Failed,
                             AttemptState::Abandoned}) {
    bool current = model.attempt && model.attempt->state == state;
    out += fmt::format("bootstate_attempt_state{{state=\"{}\",generation=\"{}\"}} {}\n",
                       to_string(state), label(model.attempt ? model.attempt->generation : ""),
                       current ? 1 : 0);
  }
  const Attempt none;
  const Attempt& attempt = model.attempt ? *model.attempt : none;
  metric(out, "bootstate_attempt_number", "Number of the current attempt, 0 without one.");
  out += fmt::format("bootstate_attempt_number {}\n", attempt.number);
  metric(out, "bootstate_attempt_boots", "Boots that worked on the current attempt.");
  out += fmt::format("bootstate_attempt_boots {}\n", attempt.boot_ids.size());
  metric(out, "bootstate_attempt_boots_without_progress",
         "Consecutive boots of the attempt that completed no step (the attempt fails after 5).");
  out +=
      fmt::format("bootstate_attempt_boots_without_progress {}\n", attempt.boots_without_progress);

  metric(out, "bootstate_boot_counting",
         "1 for the boot counting state of the booted entry (active, off, impossible).");
  for (BootCounting counting :
       {BootCounting::Active, BootCounting::Off, BootCounting::Impossible}) {
    out += fmt::format("bootstate_boot_counting{{state=\"{}\"}} {}\n", to_string(counting),
                       model.counting == counting ? 1 : 0);
  }
  metric(out, "bootstate_boot_tries_left",
         "Tries left on the booted entry's counter; -1 when it has none (blessed or not counted).");
  out += fmt::format("bootstate_boot_tries_left {}\n", model.tries_left);

  int failed_steps = 0;
  std::map<std::string, int> by_state = {{"pending", 0}, {"running", 0},  {"applied", 0},
                                         {"failed", 0},  {"declined", 0}, {"undone", 0}};
  for (const MigrationRow& row : model.migrations) {
    ++by_state[std::string(row.state)];
    for (const auto* steps : {&row.steps, &row.undo_steps}) {
      for (const StepRow& step : *steps) failed_steps += step.state == "failed" ? 1 : 0;
    }
  }
  metric(out, "bootstate_failed_steps", "Steps (forward and undo) whose last run failed.");
  out += fmt::format("bootstate_failed_steps {}\n", failed_steps);
  metric(out, "bootstate_migrations", "Migrations by state (plan migrations and stale ones).");
  for (const auto& [state, count] : by_state) {
    out += fmt::format("bootstate_migrations{{state=\"{}\"}} {}\n", label(state), count);
  }
  metric(out, "bootstate_open_error_items",
         "Error items of checks without a chosen resolution (they block their generation).");
  const auto open_errors = std::count_if(model.items.begin(), model.items.end(),
                                         [](const ItemView& view) { return view.blocker; });
  out += fmt::format("bootstate_open_error_items {}\n", open_errors);
  metric(out, "bootstate_warnings", "Warnings status reports (a torn state slot, no plan, ...).");
  out += fmt::format("bootstate_warnings {}\n", model.warnings.size());
  return out;
}

// FILE.tmp-PID next to FILE, then rename: the collector sees the old file or the new one.
Expected<void> replace_file(const std::string& path, std::string_view text) {
  const std::string temporary = fmt::format("{}.tmp-{}", path, ::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return make_error(ErrorCode::Io, "cannot create {}: {}", temporary, errno_text(errno));
  std::size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      return make_error(ErrorCode::Io, "cannot write {}: {}", temporary, errno_text(error));
    }
    written += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    return make_error(ErrorCode::Io, "cannot rename {} to {}: {}", temporary, path,
                      errno_text(error));
  }
  return {};
}

}  // namespace

int metrics_command(const Machine& machine) {
  auto model = gather_status(machine);
  if (!model) return report_error(model.error());
  std::string text = render_metrics(*model);
  if (machine.options().output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  if (auto written = replace_file(machine.options().output, text); !written) {
    return report_error(written.error());
  }
  return kExitOk;
}

}  // namespace bootstate::cli

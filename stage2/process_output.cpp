#include "stage2/process_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "stage2/libsystemd.hpp"

namespace bootstate::stage2 {

namespace {

// A line longer than this goes to the journal in pieces: a child printing megabytes without a
// newline must not grow the line buffer without bound.
constexpr std::size_t kMaxJournalLine = 4096;

// Writes all of `bytes`, or returns the errno of the write that failed.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

}  // namespace

Expected<OutputSink> OutputSink::open(const ProcessSpec& spec) {
  OutputSink sink;
  sink.limit_ = spec.log_limit_bytes;
  sink.journal_identifier_ = spec.journal_identifier;
  sink.log_path_ = spec.log_path;
  if (!spec.log_path.empty()) {
    // Not followed when a symlink; O_NONBLOCK so that a FIFO planted there cannot hang the
    // open, and then refused: a log is a regular file.
    sink.log_.reset(::open(
        spec.log_path.c_str(),
        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0640));
    if (!sink.log_.valid()) {
      return make_error(ErrorCode::Io, "cannot open log {}: {}", spec.log_path,
                        errno == ELOOP ? "it is a symlink" : errno_text(errno));
    }
    struct stat status {};
    if (::fstat(sink.log_.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
      return make_error(ErrorCode::Io, "cannot open log {}: not a regular file", spec.log_path);
    }
    ::fcntl(sink.log_.get(), F_SETFL, O_APPEND);
  }
  return sink;
}

void OutputSink::write_log(std::string_view bytes) {
  if (!log_.valid() || log_truncated_ || bytes.empty()) return;
  // The limit is per run: a retried step keeps the output of its latest run, and the number of
  // runs is bounded by the engine's loop breaker.
  std::uint64_t room = limit_ - log_written_;
  std::string_view part =
      bytes.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size())));
  std::string tail;
  if (part.size() < bytes.size()) {
    log_truncated_ = true;
    bool at_line_start = part.empty() ? log_ends_with_newline_ : part.back() == '\n';
    if (!at_line_start) tail = "\n";
    tail += kLogTruncatedLine;
    tail += '\n';
  }
  int error = write_all(log_.get(), part);
  if (error == 0 && !tail.empty()) error = write_all(log_.get(), tail);
  if (error != 0) {
    log_error_ = "cannot write log " + log_path_ + ": " + errno_text(error);
    log_.reset();
    return;
  }
  log_written_ += part.size();
  if (!part.empty()) log_ends_with_newline_ = part.back() == '\n';
}

void OutputSink::send_journal_line(std::string_view line) {
  // Sending fails when no journald runs (a container, a test machine); the log file still has
  // the output, so that failure is not an error of the step.
  if (const auto* systemd = libsystemd::library()) {
    (void)systemd->journal_send("MESSAGE=%.*s", static_cast<int>(line.size()), line.data(),
                                "SYSLOG_IDENTIFIER=%s", journal_identifier_.c_str(), "PRIORITY=6",
                                nullptr);
    return;
  }
  // No libsystemd (a minimal container): stderr, which the service manager, if any, keeps.
  std::fprintf(stderr, "%s: %.*s\n", journal_identifier_.c_str(), static_cast<int>(line.size()),
               line.data());
}

void OutputSink::journal_bytes(std::string_view bytes) {
  if (journal_identifier_.empty() || journal_truncated_) return;
  for (char c : bytes) {
    if (journal_sent_ >= limit_) {
      // The journal gets the same bound as the log: it is shared by the whole machine.
      journal_truncated_ = true;
      if (!journal_line_.empty()) send_journal_line(journal_line_);
      journal_line_.clear();
      send_journal_line(kLogTruncatedLine);
      return;
    }
    ++journal_sent_;
    if (c == '\n') {
      send_journal_line(journal_line_);
      journal_line_.clear();
      continue;
    }
    journal_line_ += c;
    if (journal_line_.size() >= kMaxJournalLine) {
      send_journal_line(journal_line_);
      journal_line_.clear();
    }
  }
}

void OutputSink::on_output(std::string_view bytes) {
  write_log(bytes);
  journal_bytes(bytes);
}

void OutputSink::on_captured_stdout(std::string_view bytes) {
  std::size_t room = limit_ > captured_.size() ? limit_ - captured_.size() : 0;
  captured_.append(bytes.substr(0, std::min(room, bytes.size())));
}

void OutputSink::finish() {
  if (!journal_identifier_.empty() && !journal_truncated_ && !journal_line_.empty()) {
    send_journal_line(journal_line_);
  }
  journal_line_.clear();
}

}  // namespace bootstate::stage2

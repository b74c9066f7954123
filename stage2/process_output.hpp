// Where a child's output goes: the bounded log file, the journal (one entry per line) and the
// bounded stdout capture. Kept apart from the runner so its poll loop only moves bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "stage2/fd.hpp"

namespace bootstate::stage2 {

// The line written (to the log and the journal) when the output passes log_limit_bytes.
inline constexpr std::string_view kLogTruncatedLine = "[log truncated]";

class OutputSink {
 public:
  // Opens spec.log_path for appending (created 0640 when missing) if the spec names one.
  // Fails, naming the path and errno, when it cannot be opened: a step whose log cannot be
  // kept does not run.
  static Expected<OutputSink> open(const ProcessSpec& spec);

  // Output of the child's stdout and stderr together (one pipe, so their order is kept); when
  // the spec captures stdout this is stderr only.
  void on_output(std::string_view bytes);
  // The child's stdout when the spec captures it: kept in memory, bounded by log_limit_bytes.
  void on_captured_stdout(std::string_view bytes);
  // The output ended: a last line without a newline is sent to the journal.
  void finish();

  std::string take_captured_stdout() { return std::move(captured_); }
  // Why writing the log failed (logging stopped then), empty when it did not.
  const std::string& log_error() const { return log_error_; }

 private:
  OutputSink() = default;
  void write_log(std::string_view bytes);
  void send_journal_line(std::string_view line);
  void journal_bytes(std::string_view bytes);

  Fd log_;
  std::string log_path_;
  std::uint64_t limit_ = 0;
  std::uint64_t log_written_ = 0;  // output bytes written to the log by this run
  bool log_truncated_ = false;
  bool log_ends_with_newline_ = true;
  std::string log_error_;

  std::string journal_identifier_;
  std::string journal_line_;        // the current, incomplete line
  std::uint64_t journal_sent_ = 0;  // output bytes sent to the journal by this run
  bool journal_truncated_ = false;

  std::string captured_;
};

}  // namespace bootstate::stage2

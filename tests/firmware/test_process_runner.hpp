// A minimal ProcessRunner for the firmware tests, until stage2's PosixProcessRunner lands.
//
// It does what FirmwareStepExecutor relies on and no more: execve with the given environment,
// stdout captured (capture_stdout), stderr appended to log_path (or discarded), a timeout
// that kills the process group. It also keeps the last spec, so tests can assert on argv.
#pragma once

#include "core/interfaces.hpp"

namespace bootstate::test {

class TestProcessRunner : public ProcessRunner {
 public:
  // Runs `spec` to completion (or its timeout) and reports how it ended.
  ProcessResult run(const ProcessSpec& spec) override;

  // The spec of the last run() call, for assertions on argv and timeouts.
  const ProcessSpec& last() const { return last_; }
  int calls() const { return calls_; }

 private:
  ProcessSpec last_;
  int calls_ = 0;
};

}  // namespace bootstate::test

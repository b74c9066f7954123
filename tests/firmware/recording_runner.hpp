// The real PosixProcessRunner (stage2), recording what it was asked to run so tests can assert
// on the helper's argv and timeouts.
#pragma once

#include "stage2/process_runner.hpp"

namespace bootstate::test {

class RecordingRunner : public ProcessRunner {
 public:
  // Runs `spec` with PosixProcessRunner and remembers it.
  ProcessResult run(const ProcessSpec& spec) override {
    last_ = spec;
    ++calls_;
    return real_.run(spec);
  }
  // The spec of the last run() call.
  const ProcessSpec& last() const { return last_; }
  int calls() const { return calls_; }

 private:
  PosixProcessRunner real_;
  ProcessSpec last_;
  int calls_ = 0;
};

}  // namespace bootstate::test

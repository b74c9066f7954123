// Shared by the tests that talk to the real fwupd daemon: skipping when it cannot run, running
// the helper, and printing measured times.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "firmware/helper_protocol.hpp"
#include "tests/firmware/fwupd_daemon.hpp"
#include "tests/firmware/recording_runner.hpp"

namespace bootstate::test {

// ctest registers these cases with SKIP_RETURN_CODE 77: a machine without fwupd shows them as
// skipped with the reason, never as passed.
inline void require_fwupd() {
  const std::string reason = FwupdDaemon::unavailable_reason();
  if (!reason.empty()) {
    std::fprintf(stderr, "SKIP: fwupd cannot run here: %s\n", reason.c_str());
    std::exit(77);
  }
}

inline std::string cabinet(const char* name) {
  return std::string(kTestCabinets) + "/" + name;
}

inline void report_time(const char* what, std::chrono::steady_clock::duration elapsed) {
  std::fprintf(stderr, "measured: %s: %lld ms\n", what,
               static_cast<long long>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
}

struct HelperRun {
  ProcessResult process;
  HelperReply reply;  // result Failed with the parse error when stdout was not a reply
  std::chrono::steady_clock::duration elapsed{};
  std::string log;  // the helper's stderr (progress lines, fwupd requests)
};

// Runs bootstate-fwupd with `args` against whatever DBUS_SYSTEM_BUS_ADDRESS says.
inline HelperRun run_helper(const std::vector<std::string>& args, const std::string& log_dir) {
  RecordingRunner runner;
  ProcessSpec spec;
  spec.argv = {BOOTSTATE_FWUPD_HELPER};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (const char* bus = std::getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
    spec.environment.push_back(std::string("DBUS_SYSTEM_BUS_ADDRESS=") + bus);
  }
  spec.capture_stdout = true;
  spec.timeout_seconds = 120;
  spec.log_path = log_dir + "/helper.log";
  std::remove(spec.log_path.c_str());
  HelperRun run;
  const auto started = std::chrono::steady_clock::now();
  run.process = runner.run(spec);
  run.elapsed = std::chrono::steady_clock::now() - started;
  auto reply = parse_reply(run.process.stdout_text);
  if (reply) {
    run.reply = *reply;
  } else {
    run.reply.message = reply.error().message;
  }
  if (FILE* file = std::fopen(spec.log_path.c_str(), "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) run.log.append(buffer, n);
    std::fclose(file);
  }
  return run;
}

}  // namespace bootstate::test

// The commands of `bootstate`. Each returns the process exit status (docs/DESIGN.md):
// 0 ok, 1 phase failed / preview blocked, 2 usage or invalid input (nothing changed),
// 4 reboot required.
#pragma once

#include "cli/machine.hpp"

namespace bootstate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitInvalid = 2;
inline constexpr int kExitReboot = 4;

// Before a command reads the whole state: keep freed memory in the heap (main.cpp says why).
// Not on an idle boot's path, which reads a few KiB: mallopt's code is a page fault there.
void keep_freed_memory_for_reuse();

int run_command(const Machine& machine);
int status_command(const Machine& machine);
int preview_command(const Machine& machine);
int history_command(const Machine& machine);
int log_command(const Machine& machine);       // cmd_log.cpp
int metrics_command(const Machine& machine);   // cmd_metrics.cpp
int decision_command(const Machine& machine);  // accept, decline, retry
int cancel_command(const Machine& machine);    // cmd_cancel.cpp
int choose_command(const Machine& machine);    // cmd_choose.cpp

// Prints "bootstate: MESSAGE" to stderr and returns kExitInvalid: every error that reaches a
// command's top changed nothing (the store commits are the only writes, and they either land
// whole or not at all).
int report_error(const Error& error);

}  // namespace bootstate::cli

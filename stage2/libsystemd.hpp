// libsystemd, loaded on first use with dlopen(), the way systemd itself loads its optional
// libraries (src/shared/dlopen helpers, dlopen_many_sym_or_warn).
//
// Why: `bootstate run --phase P` runs at every boot, and with nothing pending it must cost
// about as much as reading a small file (docs/PERFORMANCE.md, "(a) nothing pending"). Linked
// normally, Debian's libsystemd.so.0 is BIND_NOW and brings libgcrypt, liblzma, libzstd,
// liblz4, libcap and libgpg-error with it: the dynamic loader resolved thousands of symbols
// at every start, most of the program's start-up, for a library that a run with nothing to
// do never calls. Loaded here, that cost is paid only by a run that logs, notifies or reboots.
//
// Why it may be missing: a minimal container or initrd may lack libsystemd.so.0. Then
// library() returns nullptr and the callers degrade (journal lines go to stderr, STATUS= is
// dropped, a reboot request fails with an error that is reported): never a crash and never a
// different exit status.
//
// The function-pointer types come from the <systemd/...> headers with decltype, so a
// signature change in libsystemd is a compile error here, not a wrong call at run time.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <string>

namespace bootstate::stage2::libsystemd {

// The libsystemd functions bootstate calls, resolved from "libsystemd.so.0", named without
// their "sd_" prefix: sd-journal.h makes sd_journal_send a macro (adding CODE_FILE= and
// CODE_LINE=, which would always name this module). All are set when library() returns
// non-null. The library stays loaded until the process exits.
struct Library {
  decltype(&::sd_journal_send) journal_send = nullptr;
  decltype(&::sd_notifyf) notifyf = nullptr;
  decltype(&::sd_bus_new) bus_new = nullptr;
  decltype(&::sd_bus_set_address) bus_set_address = nullptr;
  decltype(&::sd_bus_start) bus_start = nullptr;
  decltype(&::sd_bus_call_method) bus_call_method = nullptr;
  decltype(&::sd_bus_error_free) bus_error_free = nullptr;
  decltype(&::sd_bus_flush_close_unref) bus_flush_close_unref = nullptr;
};

// The loaded library, or nullptr when libsystemd.so.0 (or one of the functions above) cannot
// be loaded. Loads on the first call only; later calls return the same answer. Thread-safe.
const Library* library();

// Why library() returns nullptr: dlerror()'s text ("libsystemd.so.0: cannot open shared
// object file: No such file or directory"); empty when it loaded. Loads like library().
const std::string& load_error();

}  // namespace bootstate::stage2::libsystemd

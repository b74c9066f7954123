// Output lines reach the journal: a private mount namespace puts a datagram socket of ours at
// /run/systemd/journal/socket, where sd_journal_send delivers, and the entries are decoded
// from journald's native protocol. Needs CAP_SYS_ADMIN (unshare, mount); skips otherwise.
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "stage2/process_runner.hpp"
#include "tests/stage2/temp_dir.hpp"

using namespace bootstate;

namespace {

constexpr int kCannotIsolate = 77;

// "IDENTIFIER PRIORITY MESSAGE" of one native-protocol datagram (single-line fields only).
std::string decode(const std::string& datagram) {
  std::string identifier, priority, message;
  std::istringstream fields(datagram);
  for (std::string field; std::getline(fields, field);) {
    if (field.starts_with("SYSLOG_IDENTIFIER=")) identifier = field.substr(18);
    if (field.starts_with("PRIORITY=")) priority = field.substr(9);
    if (field.starts_with("MESSAGE=")) message = field.substr(8);
  }
  return identifier + " " + priority + " " + message;
}

// In the forked child: isolate /run, listen as the journal, run the specs, write what the
// journal received to `out`, one entry per line.
[[noreturn]] void journal_child(int out, const std::vector<ProcessSpec>& specs) {
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
    ::_exit(kCannotIsolate);
  }
  ::mkdir("/run/systemd", 0755);
  ::mkdir("/run/systemd/journal", 0755);
  int listener = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, "/run/systemd/journal/socket");
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address)) {
    ::_exit(kCannotIsolate);
  }
  PosixProcessRunner runner;
  for (const auto& spec : specs) {
    if (!runner.run(spec).succeeded()) ::_exit(1);
  }
  std::string received;
  std::vector<char> buffer(1 << 16);
  for (ssize_t size; (size = ::recv(listener, buffer.data(), buffer.size(), MSG_DONTWAIT)) > 0;) {
    received += decode(std::string(buffer.data(), static_cast<std::size_t>(size))) + "\n";
  }
  if (::write(out, received.data(), received.size()) != static_cast<ssize_t>(received.size())) {
    ::_exit(1);
  }
  ::_exit(0);
}

}  // namespace

TEST_CASE("output lines go to the journal with identifier and priority 6, bounded") {
  ProcessSpec lines;
  lines.argv = {"/bin/sh", "-c", "echo one; echo two >&2; printf 'no newline'"};
  lines.journal_identifier = "bootstate-m-s";
  ProcessSpec bounded;
  bounded.argv = {"/bin/echo", "0123456789abcdef"};
  bounded.journal_identifier = "bootstate-m-t";
  bounded.log_limit_bytes = 10;
  ProcessSpec silent;  // no identifier: nothing sent
  silent.argv = {"/bin/echo", "not for the journal"};

  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    journal_child(pipe_fds[1], {lines, bounded, silent});
  }
  ::close(pipe_fds[1]);
  std::string received;
  char buffer[4096];
  for (ssize_t size; (size = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    received.append(buffer, static_cast<std::size_t>(size));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kCannotIsolate) {
    WARN_MESSAGE(false,
                 "skipped: a private mount namespace for a fake journal needs "
                 "CAP_SYS_ADMIN, which this process lacks");
    return;
  }
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(received ==
        "bootstate-m-s 6 one\n"
        "bootstate-m-s 6 two\n"
        "bootstate-m-s 6 no newline\n"
        "bootstate-m-t 6 0123456789\n"
        "bootstate-m-t 6 [log truncated]\n");
}

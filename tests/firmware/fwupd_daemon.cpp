#include "tests/firmware/fwupd_daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace bootstate::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// fork + exec with a prepared environment; stdout/stderr appended to `log`.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
            const std::string& log) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::setpgid(0, 0);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

void stop(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (::waitpid(pid, nullptr, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid = -1;
}

}  // namespace

std::string FwupdDaemon::unavailable_reason() {
  if (!fs::exists(kFwupdDaemon)) {
    return std::string(kFwupdDaemon) + " is missing (apt-get install fwupd)";
  }
  if (!fs::exists(fs::path(kTestCabinets) / "fakedevice124.cab")) {
    return std::string(kTestCabinets) +
           "/fakedevice124.cab is missing (apt-get install fwupd-tests)";
  }
  if (!fs::exists("/usr/bin/dbus-daemon")) return "/usr/bin/dbus-daemon is missing";
  if (::geteuid() != 0) return "fwupd installs firmware only for root";
  return {};
}

FwupdDaemon::FwupdDaemon(Options options) : options_(std::move(options)) {
  std::string pattern = (fs::temp_directory_path() / "bootstate-fwupd-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  fs::create_directories(fs::path(dir_) / "sysconf/fwupd/remotes.d");
  fs::create_directories(fs::path(dir_) / "state");
  write_config(options_.test_plugin);
  bus_address_ = "unix:path=" + dir_ + "/bus.sock";
  write_file(fs::path(dir_) / "bus.conf",
             "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
             " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
             "<busconfig><type>system</type><listen>" +
                 bus_address_ +
                 "</listen>\n"
                 "<auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>"
                 "<allow own=\"*\"/><allow send_type=\"method_call\"/>"
                 "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>"
                 "<allow receive_sender=\"*\"/></policy>\n"
                 "<includedir>/usr/share/dbus-1/system.d</includedir></busconfig>\n");
  bus_pid_ = spawn({"/usr/bin/dbus-daemon", "--config-file=" + dir_ + "/bus.conf", "--nofork"},
                   {"PATH=/usr/bin:/bin"}, dir_ + "/dbus.log");
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!fs::exists(dir_ + "/bus.sock")) {
    if (Clock::now() > deadline) throw std::runtime_error("dbus-daemon did not start: " + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address_.c_str(), 1);
  if (options_.start_fwupd) start_fwupd();
}

void FwupdDaemon::write_config(const std::map<std::string, std::string>& test_plugin) {
  std::string text = std::string("[fwupd]\nTestDevices=true\nOnlyTrusted=") +
                     (options_.only_trusted ? "true" : "false") + "\n[test]\n";
  for (const auto& [key, value] : test_plugin) text += key + "=" + value + "\n";
  write_file(fs::path(dir_) / "sysconf/fwupd/fwupd.conf", text);
}

FwupdDaemon::~FwupdDaemon() {
  stop(fwupd_pid_);
  stop(bus_pid_);
  ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
  std::error_code ignored;
  if (std::getenv("BOOTSTATE_KEEP_FWUPD_DIR") == nullptr) fs::remove_all(dir_, ignored);
}

void FwupdDaemon::start_fwupd() {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
  env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_address_);
  env.push_back("FWUPD_SYSCONFDIR=" + dir_ + "/sysconf");
  env.push_back("FWUPD_LOCALSTATEDIR=" + dir_ + "/state");
  const auto started = Clock::now();
  fwupd_pid_ = spawn({kFwupdDaemon, "-v"}, env, dir_ + "/fwupd.log");
  const auto deadline = started + std::chrono::seconds(20);
  while (!fwupd_on_bus()) {
    if (Clock::now() > deadline || ::waitpid(fwupd_pid_, nullptr, WNOHANG) != 0) {
      throw std::runtime_error("fwupd did not come up on the private bus: " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
}

void FwupdDaemon::stop_fwupd() {
  stop(fwupd_pid_);
}

void FwupdDaemon::restart(std::map<std::string, std::string> test_plugin) {
  stop(fwupd_pid_);
  write_config(test_plugin);
  start_fwupd();
}

bool FwupdDaemon::fwupd_on_bus() const {
  sd_bus* bus = nullptr;
  if (sd_bus_new(&bus) < 0) return false;
  bool owned = false;
  if (sd_bus_set_address(bus, bus_address_.c_str()) >= 0 && sd_bus_set_bus_client(bus, 1) >= 0 &&
      sd_bus_start(bus) >= 0) {
    sd_bus_message* reply = nullptr;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int has_owner = 0;
    if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s",
                           "org.freedesktop.fwupd") >= 0 &&
        sd_bus_message_read(reply, "b", &has_owner) >= 0) {
      owned = has_owner != 0;
    }
    sd_bus_message_unref(reply);
    sd_bus_error_free(&error);
  }
  sd_bus_flush_close_unref(bus);
  return owned;
}

std::string FwupdDaemon::log() const {
  std::ostringstream text;
  for (const char* name : {"/dbus.log", "/fwupd.log"}) {
    std::ifstream in(dir_ + name);
    text << "--- " << name << "\n" << in.rdbuf();
  }
  return text.str();
}

}  // namespace bootstate::test

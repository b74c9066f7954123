#include "cli/machine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>

#include "bootloader/entry_name.hpp"
#include "cli/command_table.hpp"
#include "core/paths.hpp"
#include "core/read_file.hpp"

namespace bootstate::cli {
namespace {

constexpr std::string_view kCurrentSystem = "/run/current-system";

bool is_directory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool is_regular(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// The file system (st_dev) of `path`; 0 when it cannot be stat()ed.
dev_t device_of(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? info.st_dev : 0;
}

// One directory, whatever the two paths spell.
bool same_directory(const std::string& a, const std::string& b) {
  struct stat first {};
  struct stat second {};
  return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 &&
         first.st_dev == second.st_dev && first.st_ino == second.st_ino;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string Machine::rooted(std::string_view path) const {
  // Under --root nothing may reach outside DIR (issue 13, item 15): `..` (an init= of
  // /nix/store/../../etc/init) stops at DIR, and a relative path (--esp boot) counts from DIR,
  // not from the cwd. Without --root a relative path counts from the cwd.
  return path_inside(options_.root, path);
}

std::string_view command_name(Command command) {
  // From the one table of commands: a switch here missed the commands added later (log,
  // metrics), which -Werror=switch refused to build after the merge.
  return spec_of(command).name;
}

Expected<void> Machine::require_access(const std::vector<std::string>& paths, bool write) const {
  if (::geteuid() == 0) return {};
  for (const std::string& wanted : paths) {
    // The path itself, or (not there yet) the nearest directory above it that write would
    // create it in.
    std::string path = wanted;
    struct stat info {};
    while (::stat(path.c_str(), &info) != 0 && errno == ENOENT && path.size() > 1) {
      const auto slash = path.find_last_of('/');
      if (slash == std::string::npos) {
        path = ".";
        break;
      }
      path = slash == 0 ? "/" : path.substr(0, slash);
    }
    if (::stat(path.c_str(), &info) != 0) continue;  // the command's own open names the problem
    int mode = S_ISDIR(info.st_mode) ? R_OK | X_OK : R_OK;
    if (write) mode |= W_OK;
    if (::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) != 0 &&
        (errno == EACCES || errno == EPERM)) {
      return make_error(ErrorCode::InvalidInput,
                        "bootstate {} needs root: {} is not {} by uid {} (nothing was changed)",
                        command_name(options_.command), path, write ? "writable" : "readable",
                        ::geteuid());
    }
  }
  return {};
}

std::int64_t Machine::wall_clock_usec() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Expected<BootFacts> Machine::boot_facts(FactsToRead what) const {
  BootFacts facts;
  auto boot_id = read_file(rooted("/proc/sys/kernel/random/boot_id"));
  if (!boot_id) return boot_id.error();
  facts.boot_id = trim(*boot_id);
  // Steps and attempts are told apart by boot id: an empty one (or one with control bytes)
  // would make every boot the same boot, and go into the state and `status --json` as is.
  const bool printable = std::all_of(facts.boot_id.begin(), facts.boot_id.end(),
                                     [](char c) { return c > ' ' && c < 0x7f; });
  if (facts.boot_id.empty() || facts.boot_id.size() > 128 || !printable) {
    return make_error(ErrorCode::InvalidInput,
                      "{}: not a boot id (expected one line of up to 128 printable characters, "
                      "as the kernel's UUID)",
                      rooted("/proc/sys/kernel/random/boot_id"));
  }
  auto cmdline = read_file(rooted("/proc/cmdline"));
  if (!cmdline) return cmdline.error();
  facts.booted_generation = cmdline_generation(*cmdline).value_or("");
  if (what.current_system) facts.current_generation = current_system();
  // The same toplevel spelled differently (init=/nix/store//x/init) is no switch.
  if (!facts.booted_generation.empty() &&
      facts.current_generation == lexically_normal(facts.booted_generation)) {
    facts.current_generation = facts.booted_generation;
  }
  if (what.clock) facts.now_usec = wall_clock_usec();
  return facts;
}

Expected<std::string> Machine::esp() const {
  if (!options_.esp.empty()) {
    std::string path = rooted(options_.esp);
    if (!is_directory(path)) {
      return make_error(ErrorCode::InvalidInput, "--esp {}: not a directory", path);
    }
    return path;
  }
  // With XBOOTLDR, /boot holds loader/entries too, but never bootstate's state or the
  // loader.conf the builder keeps on the ESP: such a candidate is an ESP for certain.
  for (const char* candidate : {"/boot", "/efi", "/bootstate"}) {
    std::string path = rooted(candidate);
    if (is_directory(path + "/bootstate") || is_regular(path + "/loader/loader.conf")) {
      return path;
    }
  }
  for (const char* candidate : {"/boot", "/efi", "/bootstate"}) {
    std::string path = rooted(candidate);
    if (is_directory(path + "/loader") || is_directory(path + "/bootstate")) return path;
  }
  return make_error(ErrorCode::InvalidInput,
                    "no ESP found at {} or {} (no loader/ or bootstate/ directory): give --esp",
                    rooted("/boot"), rooted("/efi"));
}

Expected<std::string> Machine::boot_partition(const std::string& esp) const {
  if (!options_.boot.empty()) {
    std::string path = rooted(options_.boot);
    if (!is_directory(path)) {
      return make_error(ErrorCode::InvalidInput, "--boot {}: not a directory", path);
    }
    // The ESP under another name (a symlink, a bind mount) is no second partition: taken as
    // one, every entry was on "both" and a booted entry without counter was refused as
    // ambiguous.
    if (same_directory(path, esp)) return std::string();
    return path;
  }
  const std::string boot = rooted("/boot");
  if (boot == esp || is_directory(boot + "/bootstate") ||
      !(is_directory(boot + "/loader/entries") || is_directory(boot + "/EFI/Linux"))) {
    return std::string();
  }
  // Only a separate file system can be the XBOOTLDR partition systemd-boot reads.
  const dev_t device = device_of(boot);
  if (device == 0 || device == device_of(esp) || device == device_of(rooted("/"))) {
    return std::string();
  }
  return boot;
}

const std::string& Machine::current_system() const {
  if (current_system_) return *current_system_;
  std::string link = rooted(kCurrentSystem);
  // A store path is short: an idle boot reads this link, and every page of heap or stack it
  // touches is a page fault, so a PATH_MAX buffer only when the first one is too small.
  std::string target(256, '\0');
  ssize_t length = ::readlink(link.c_str(), target.data(), target.size());
  if (length == static_cast<ssize_t>(target.size())) {
    target.assign(PATH_MAX, '\0');
    length = ::readlink(link.c_str(), target.data(), target.size());
  }
  if (length <= 0 || static_cast<std::size_t>(length) >= target.size()) {
    target.clear();
  } else {
    target.resize(static_cast<std::size_t>(length));
    // switch-to-configuration writes an absolute store path; a relative one counts from /run.
    if (target.front() != '/') target = "/run/" + target;
    target = lexically_normal(target);
  }
  return current_system_.emplace(std::move(target));
}

std::string Machine::plan_file(const std::string& plan_or_toplevel) const {
  std::string wanted = lexically_normal(plan_or_toplevel);
  const std::string_view current = kCurrentSystem;
  if (wanted.rfind(current, 0) == 0 &&
      (wanted.size() == current.size() || wanted[current.size()] == '/')) {
    if (const std::string& toplevel = current_system(); !toplevel.empty()) {
      wanted = toplevel + wanted.substr(current.size());
    }
  }
  std::string path = rooted(wanted);
  if (is_directory(path)) path += "/bootstate/plan.json";
  return path;
}

Expected<Plan> Machine::plan_at(const std::string& plan_or_toplevel, DefinitionTexts texts) const {
  std::string path = plan_file(plan_or_toplevel);
  auto text = read_file(path);
  if (!text) {
    return make_error(ErrorCode::InvalidInput, "plan: {}", text.error().message);
  }
  return parse_owned_plan(std::move(*text), path, texts);
}

Expected<Plan> Machine::booted_plan(std::optional<Phase> phase, const BootFacts& facts,
                                    DefinitionTexts texts) const {
  if (!options_.plan.empty()) return plan_at(options_.plan, texts);
  if (phase && *phase != Phase::PostActivation) {
    auto initrd_copy = plan_at("/etc/bootstate/plan.json", texts);
    // Without the initrd's copy, the generation's own plan where the root file system is
    // (/sysroot in pre-switch-root; the tree itself under --root).
    if (initrd_copy || facts.booted_generation.empty() ||
        (options_.root.empty() && *phase == Phase::InitrdPreMount)) {
      return initrd_copy;
    }
    // Normalized before it is put under /sysroot: `..` in init= must not climb out of it.
    std::string toplevel = root_fs(*phase) == root()
                               ? facts.booted_generation
                               : root_fs(*phase) + lexically_normal(facts.booted_generation);
    auto own = plan_at(toplevel, texts);
    return own ? own : initrd_copy;
  }
  if (facts.target_generation().empty()) {
    return make_error(ErrorCode::InvalidInput,
                      "{}: no init=TOPLEVEL/init on the kernel command line, so the booted "
                      "generation (and its plan) is unknown: give --plan",
                      rooted("/proc/cmdline"));
  }
  // In stage 2 the plan of the generation this run works for: the current system's after a
  // live switch (docs/DESIGN.md "A live switch").
  return plan_at(facts.target_generation(), texts);
}

std::string Machine::root_fs(Phase phase) const {
  if (phase == Phase::PreSwitchRoot && options_.root.empty()) return "/sysroot";
  return root();
}

std::string Machine::data_dir(Phase phase) const {
  if (phase == Phase::InitrdPreMount) return rooted("/run/bootstate");
  std::string root_fs_path = root_fs(phase);
  if (root_fs_path == "/") return "/var/lib/bootstate";
  return root_fs_path + "/var/lib/bootstate";
}

}  // namespace bootstate::cli

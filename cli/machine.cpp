#include "cli/machine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "bootloader/entry_name.hpp"
#include "core/read_file.hpp"

namespace bootstate::cli {
namespace {

bool is_directory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string Machine::rooted(std::string_view absolute) const {
  if (absolute.empty() || absolute[0] != '/') return std::string(absolute);  // relative: as given
  return options_.root + std::string(absolute);
}

Expected<BootFacts> Machine::boot_facts() const {
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
  facts.now_usec = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
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
  for (const char* candidate : {"/boot", "/efi", "/bootstate"}) {
    std::string path = rooted(candidate);
    if (is_directory(path + "/loader") || is_directory(path + "/bootstate")) return path;
  }
  return make_error(ErrorCode::InvalidInput,
                    "no ESP found at {} or {} (no loader/ or bootstate/ directory): give --esp",
                    rooted("/boot"), rooted("/efi"));
}

Expected<Plan> Machine::plan_at(const std::string& plan_or_toplevel) const {
  std::string path = rooted(plan_or_toplevel);
  if (is_directory(path)) path += "/bootstate/plan.json";
  auto text = read_file(path);
  if (!text) {
    return make_error(ErrorCode::InvalidInput, "plan: {}", text.error().message);
  }
  return parse_plan(*text, path);
}

Expected<Plan> Machine::booted_plan(std::optional<Phase> phase, const BootFacts& facts) const {
  if (!options_.plan.empty()) return plan_at(options_.plan);
  if (phase && *phase != Phase::PostActivation) {
    auto initrd_copy = plan_at("/etc/bootstate/plan.json");
    // Without the initrd's copy, the generation's own plan where the root file system is
    // (/sysroot in pre-switch-root; the tree itself under --root).
    if (initrd_copy || facts.booted_generation.empty() ||
        (options_.root.empty() && *phase == Phase::InitrdPreMount)) {
      return initrd_copy;
    }
    std::string toplevel = root_fs(*phase) == root() ? facts.booted_generation
                                                     : root_fs(*phase) + facts.booted_generation;
    auto own = plan_at(toplevel);
    return own ? own : initrd_copy;
  }
  if (facts.booted_generation.empty()) {
    return make_error(ErrorCode::InvalidInput,
                      "{}: no init=TOPLEVEL/init on the kernel command line, so the booted "
                      "generation (and its plan) is unknown: give --plan",
                      rooted("/proc/cmdline"));
  }
  return plan_at(facts.booted_generation);
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

// What the CLI reads about the machine it runs on, every path re-rooted under --root:
// /proc/cmdline (the booted generation), the boot id, the ESP, the booted plan, and where bulky
// data (logs, work directories, backups) lives in each phase.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/options.hpp"
#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate::cli {

// "run", "status", ...: for messages.
// The command's name as typed ("run"), from the command table.
std::string_view command_name(Command command);

class Machine {
 public:
  explicit Machine(Options options) : options_(std::move(options)) {}

  const Options& options() const { return options_; }
  // DIR + path under --root (normalized: `..` stops at DIR, a relative path counts from DIR),
  // path otherwise.
  std::string rooted(std::string_view path) const;
  // For a caller that is not root: InvalidInput "bootstate COMMAND needs root: PATH is not
  // readable/writable ..." when one of `paths` (or, when missing, the directory it would be
  // created in) cannot be used. A --root tree of the caller's own works without root.
  Expected<void> require_access(const std::vector<std::string>& paths, bool write) const;
  // BOOTSTATE_ROOT for steps: the --root DIR, "/" otherwise.
  std::string root() const { return options_.root.empty() ? "/" : options_.root; }

  // What boot_facts reads besides the boot id and the booted generation.
  struct FactsToRead {
    // false: leave current_generation empty without reading the link (the initrd phases, where
    // /run/current-system is not stage 2's yet).
    bool current_system = true;
    // false: leave now_usec 0 for the caller to fill with wall_clock_usec() once it needs it.
    // An idle phase never does, and the first clock read of a process costs two page faults
    // (the vDSO's data pages), as much as a tenth of the rest of an idle phase.
    bool clock = true;
  };
  // Boot id, booted generation (init= on /proc/cmdline) and the time.
  Expected<BootFacts> boot_facts(FactsToRead what) const;
  Expected<BootFacts> boot_facts() const { return boot_facts(FactsToRead{}); }
  // CLOCK_REALTIME in microseconds, as BootFacts::now_usec.
  static std::int64_t wall_clock_usec();
  // The mounted ESP: --esp (re-rooted), else the first of /boot, /efi that holds loader/ or
  // bootstate/ (the initrd unit mounts the ESP itself before running bootstate).
  Expected<std::string> esp() const;
  // The mounted XBOOTLDR partition ($BOOT) holding boot entries besides the ESP `esp`: --boot
  // (re-rooted), else /boot when it is neither the ESP nor on the ESP's or the root's file
  // system and holds loader/entries or EFI/Linux; "" when entries are on the ESP only.
  Expected<std::string> boot_partition(const std::string& esp) const;
  // The plan of the booted generation for `phase` (--plan wins): the initrd's copy in the
  // initrd phases, $toplevel/bootstate/plan.json in stage 2.
  Expected<Plan> booted_plan(std::optional<Phase> phase, const BootFacts& facts,
                             DefinitionTexts texts = DefinitionTexts::Keep) const;
  // A plan file, or a toplevel directory holding bootstate/plan.json.
  Expected<Plan> plan_at(const std::string& plan_or_toplevel,
                         DefinitionTexts texts = DefinitionTexts::Keep) const;
  // The file plan_at reads: re-rooted, a directory completed with bootstate/plan.json, and a
  // path through /run/current-system read through the toplevel it points at (under --root the
  // link's absolute target means a path inside DIR, and the plan read must be the generation
  // the facts name even if the link changes meanwhile).
  std::string plan_file(const std::string& plan_or_toplevel) const;
  // The toplevel /run/current-system points at (normalized), empty when it is not a symlink.
  // Read once per process: the facts and the plan read name the same generation even if a
  // switch repoints the link meanwhile, and the boot path pays for one readlink, not three.
  const std::string& current_system() const;
  // Root of the mounted root file system in `phase`: /sysroot in pre-switch-root, / in
  // post-activation. Under --root the tree plays both the initrd and the root file system.
  std::string root_fs(Phase phase) const;
  // Where logs, work directories and backups live in `phase`.
  std::string data_dir(Phase phase) const;

 private:
  Options options_;
  mutable std::optional<std::string> current_system_;
};

}  // namespace bootstate::cli

// Cross-checks against the real systemd-bless-boot (package systemd-boot) run on the same
// --root tree, in a mount/PID namespace sandbox (run_bless_boot.sh): the names bootstate
// computes and the ones bless-boot computes must agree, and each must accept the other's
// renames. Where the sandbox cannot be built (not root, no systemd-boot) the cases warn and
// stop; the warning names the reason.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <optional>

#include "bootloader/systemd_boot.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::Tree;
using Files = std::vector<std::string>;

namespace {

struct BlessRun {
  int status = -1;
  std::string output;
};

BlessRun run_bless_boot(const Tree& tree, std::string_view verb) {
  const std::string command = fmt::format("unshare -m -p -f --mount-proc sh {} {} {} 2>&1",
                                          BOOTSTATE_BLESS_BOOT_SCRIPT, tree.root(), verb);
  BlessRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) run.output += buffer;
  const int raw = ::pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return run;
}

// The machine after systemd-boot 252 booted nixos-new+3-0.conf (renamed to +2-1).
bool booted_252_with_sandbox(const Tree& tree) {
  tree.add_entry("nixos-old.conf", "/nix/store/old");
  tree.add_entry("nixos-new+2-1.conf", "/nix/store/new");
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
  const BlessRun probe = run_bless_boot(tree, "status");
  if (probe.status == 0 && probe.output.find("indeterminate") != std::string::npos) return true;
  WARN_MESSAGE(false, "skipped: systemd-bless-boot sandbox unavailable (exit "
                          << probe.status << "): " << probe.output);
  return false;
}

}  // namespace

TEST_CASE("bless-boot blesses first, then SystemdBoot::mark_good succeeds") {
  Tree tree;
  if (!booted_252_with_sandbox(tree)) return;
  const BlessRun good = run_bless_boot(tree, "good");
  CHECK_MESSAGE(good.status == 0, good.output);
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  CHECK(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
}

TEST_CASE("after a re-arm and bootstate's own mark_good, bless-boot good still succeeds") {
  Tree tree;
  if (!booted_252_with_sandbox(tree)) return;
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+3-0.conf", "nixos-old.conf"});
  REQUIRE(boot.mark_good());
  const BlessRun good = run_bless_boot(tree, "good");
  CHECK_MESSAGE(good.status == 0, good.output);
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  CHECK(run_bless_boot(tree, "status").output.find("good") != std::string::npos);
}

TEST_CASE("a re-armed entry is invisible to bless-boot: the engine must bless it itself") {
  Tree tree;
  if (!booted_252_with_sandbox(tree)) return;
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  REQUIRE(boot.rearm());
  // systemd-bless-boot 252 logs the failure but exits 0, so systemd-bless-boot.service
  // "succeeds" while the entry keeps counting down: only bootstate's mark_good() blesses it.
  const BlessRun good = run_bless_boot(tree, "good");
  CHECK(good.output.find("Can't find boot counter source file") != std::string::npos);
  CHECK(tree.entry_files() == Files{"nixos-new+3-0.conf", "nixos-old.conf"});
}

TEST_CASE("bootstate's bad name is bless-boot's bad name, in both directions") {
  Tree tree;
  if (!booted_252_with_sandbox(tree)) return;
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  SUBCASE("SystemdBoot marks bad; bless-boot sees 'bad' and bad again is a no-op") {
    REQUIRE(boot.mark_bad());
    CHECK(run_bless_boot(tree, "status").output.find("bad") != std::string::npos);
    CHECK(run_bless_boot(tree, "bad").status == 0);
  }
  SUBCASE("bless-boot marks bad; SystemdBoot sees no tries left and bad again is a no-op") {
    REQUIRE(run_bless_boot(tree, "bad").status == 0);
    CHECK(boot.booted_entry()->tries_left == 0);
    CHECK(boot.mark_bad());
  }
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf", "nixos-old.conf"});
  // Either way the entry can still be blessed by the other side.
  REQUIRE(run_bless_boot(tree, "good").status == 0);
  CHECK(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
}

}  // namespace bootstate

namespace bootstate {

TEST_CASE("UKI: bootstate's renames of an EFI/Linux image agree with bless-boot's") {
  Tree tree;
  std::string why;
  if (!tree.add_uki("boot/EFI/Linux/nixos-new+2-1.efi", "init=/nix/store/new/init\n", why)) {
    WARN_MESSAGE(false, "skipped: " << why);
    return;
  }
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.efi");
  tree.set_loader_var("LoaderBootCountPath", "\\EFI\\Linux\\nixos-new+2-1.efi");
  const BlessRun probe = run_bless_boot(tree, "status");
  if (probe.status != 0 || probe.output.find("indeterminate") == std::string::npos) {
    WARN_MESSAGE(false, "skipped: systemd-bless-boot sandbox unavailable (exit "
                            << probe.status << "): " << probe.output);
    return;
  }
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "/nix/store/new");
  REQUIRE(boot.mark_bad());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new+0-1.efi"});
  CHECK(run_bless_boot(tree, "status").output.find("bad") != std::string::npos);
  // bless-boot blesses the bad image (as after a manual boot of it), bootstate agrees.
  REQUIRE(run_bless_boot(tree, "good").status == 0);
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new.efi"});
  CHECK(boot.mark_good());
  CHECK(run_bless_boot(tree, "status").output.find("good") != std::string::npos);
}

}  // namespace bootstate

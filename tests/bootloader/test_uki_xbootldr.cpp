// Entries NixOS users have besides Type #1 entries on the ESP: unified kernel images in
// EFI/Linux (lanzaboote; generation in the PE .cmdline section) and entries on the XBOOTLDR
// partition ($BOOT, nixpkgs' xbootldrMountPoint), with the ESP elsewhere. The UKIs are real PE
// images: objcopy adds the sections onto systemd's EFI stub.
#include <doctest/doctest.h>

#include "bootloader/systemd_boot.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::Tree;
using Files = std::vector<std::string>;

namespace {

constexpr std::string_view kNew = "/nix/store/new-nixos-system";
constexpr std::string_view kOld = "/nix/store/old-nixos-system";

std::string cmdline_for(std::string_view generation) {
  return "init=" + std::string(generation) + "/init console=ttyS0 loglevel=4\n";
}

// UKIs named the way lanzaboote names them, systemd-boot 252 having booted nixos-new+3-0.efi.
bool booted_uki(const Tree& tree, std::string_view partition) {
  std::string why;
  const std::string dir = std::string(partition) + "/EFI/Linux/";
  if (!tree.add_uki(dir + "nixos-old.efi", cmdline_for(kOld), why) ||
      !tree.add_uki(dir + "nixos-new+2-1.efi", cmdline_for(kNew), why)) {
    WARN_MESSAGE(false, "skipped: " << why);
    return false;
  }
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.efi");
  tree.set_loader_var("LoaderBootCountPath", "\\EFI\\Linux\\nixos-new+2-1.efi");
  return true;
}

BootedEntry booted(SystemdBoot& boot) {
  auto entry = boot.booted_entry();
  REQUIRE_MESSAGE(entry, entry.error().message);
  return *entry;
}

}  // namespace

TEST_CASE("UKI: the booted image's counter, its generation from .cmdline, and the renames") {
  Tree tree;
  if (!booted_uki(tree, "boot")) return;
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, std::string(kNew));
  const BootedEntry entry = booted(boot);
  CHECK(entry.id == "nixos-new");
  CHECK(entry.counting == BootCounting::Active);
  CHECK(entry.tries_left == 2);
  CHECK(entry.tries_done == 1);

  // The image's own command line decides: another init= on /proc/cmdline is a kexec.
  SystemdBoot kexeced(tree.root(), tree.esp(), 3, std::string(kOld));
  CHECK(booted(kexeced).counting == BootCounting::Impossible);

  CHECK(**boot.entry_for_generation(kOld) == "nixos-old");
  CHECK(**boot.entry_for_generation(kNew) == "nixos-new");

  REQUIRE(boot.mark_bad());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new+0-1.efi", "nixos-old.efi"});
  REQUIRE(boot.rearm());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new+3-0.efi", "nixos-old.efi"});
  REQUIRE(boot.mark_bad());
  CHECK(boot.rearm_generation(kNew).value() == Files{"nixos-new+3-0.efi"});
  REQUIRE(boot.mark_good());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new.efi", "nixos-old.efi"});

  // A one-shot names a UKI by its file name, as systemd-boot's Type #2 ids are.
  REQUIRE(boot.set_one_shot("nixos-old"));
  CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == test::efivar_bytes("nixos-old.efi"));
}

TEST_CASE("UKI: an image that is not PE boots no known generation, and listing goes on") {
  Tree tree;
  tree.write("boot/EFI/Linux/broken+3.efi", "MZ but nothing else");
  tree.add_entry("nixos-old.conf", kOld);
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  auto all = boot.entries();
  REQUIRE_MESSAGE(all, all.error().message);
  REQUIRE(all->size() == 2);
  CHECK((*all)[1].file_name == "broken+3.efi");
  CHECK_FALSE((*all)[1].generation.has_value());
  CHECK(**boot.entry_for_generation(kOld) == "nixos-old");
}

TEST_CASE("XBOOTLDR: entries on $BOOT are found and renamed there; the ESP is left alone") {
  Tree tree;  // $BOOT is <root>/boot (where Tree puts entries), the ESP <root>/efi
  tree.write("efi/loader/loader.conf", "default nixos-*\n");
  tree.add_entry("nixos-old.conf", kOld);
  tree.add_entry("nixos-new+2-1.conf", kNew);
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
  const std::string esp = tree.root() + "/efi";

  // Without $BOOT the booted entry's file is nowhere: marking it bad fails (the gap this fixes).
  SystemdBoot esp_only(tree.root(), esp, 3, std::string(kNew));
  CHECK(esp_only.mark_bad().error().code == ErrorCode::NotFound);

  SystemdBoot boot(tree.root(), esp, 3, std::string(kNew), tree.esp());
  CHECK(booted(boot).counting == BootCounting::Active);
  CHECK(booted(boot).tries_left == 2);
  REQUIRE(boot.mark_bad());
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf", "nixos-old.conf"});
  CHECK(tree.files_in("efi/loader/entries").empty());
  CHECK(boot.rearm_generation(kNew).value() == Files{"nixos-new+3-0.conf"});
  REQUIRE(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  CHECK(**boot.entry_for_generation(kOld) == "nixos-old");
  auto all = boot.entries();
  REQUIRE(all);
  for (const auto& info : *all) CHECK(info.partition == tree.esp());
}

TEST_CASE("XBOOTLDR: a UKI on $BOOT, a Type #1 entry on the ESP") {
  Tree tree;
  if (!booted_uki(tree, "boot")) return;
  tree.write("efi/loader/entries/nixos-esp.conf",
             "linux /k\noptions init=/nix/store/esp-nixos-system/init\n");
  SystemdBoot boot(tree.root(), tree.root() + "/efi", SystemdBoot::kTriesAsBooted,
                   std::string(kNew), tree.esp());
  CHECK(booted(boot).counting == BootCounting::Active);
  REQUIRE(boot.mark_bad());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new+0-1.efi", "nixos-old.efi"});
  CHECK(**boot.entry_for_generation("/nix/store/esp-nixos-system") == "nixos-esp");
}

TEST_CASE("XBOOTLDR: files of the booted entry on both partitions") {
  Tree tree;
  tree.add_entry("nixos-new+2-1.conf", kNew);  // on $BOOT
  tree.write("efi/loader/entries/nixos-new.conf", "linux /k\noptions init=/nix/store/x/init\n");
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  const std::string esp = tree.root() + "/efi";
  SUBCASE("the file systemd-boot reported decides") {
    tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
    SystemdBoot boot(tree.root(), esp, 3, "", tree.esp());
    REQUIRE(boot.mark_bad());
    CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf"});
    CHECK(tree.files_in("efi/loader/entries") == Files{"nixos-new.conf"});
  }
  SUBCASE("nothing decides: refused, nothing renamed") {
    SystemdBoot boot(tree.root(), esp, 3, "", tree.esp());
    auto entry = boot.booted_entry();
    REQUIRE_FALSE(entry);
    CHECK(entry.error().message.find("refusing to guess") != std::string::npos);
    CHECK_FALSE(boot.mark_good());
    CHECK(tree.entry_files() == Files{"nixos-new+2-1.conf"});
  }
}

// The initrd's $BOOT is found by probing every disk and mounting one: a boot whose entry is on
// the ESP must not pay that (it did, on each initrd phase of every boot, before the finder).
TEST_CASE("XBOOTLDR: $BOOT is looked for only when the ESP does not hold the booted entry") {
  Tree tree;  // $BOOT is <root>/boot, the ESP <root>/efi
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
  const std::string esp = tree.root() + "/efi";
  int searches = 0;
  auto finder = [&searches, &tree] {
    ++searches;
    return tree.esp();
  };
  SUBCASE("on the ESP: never looked for") {
    tree.write("efi/loader/entries/nixos-new+2-1.conf",
               "options init=" + std::string(kNew) + "/init\n");
    SystemdBoot boot(tree.root(), esp, 3, std::string(kNew));
    boot.find_boot_with(finder);
    CHECK(booted(boot).counting == BootCounting::Active);
    REQUIRE(boot.mark_bad());
    CHECK(searches == 0);
    CHECK(tree.files_in("efi/loader/entries") == Files{"nixos-new+0-1.conf"});
  }
  SUBCASE("on $BOOT, or only a copy the loader did not report on the ESP: looked for once") {
    tree.add_entry("nixos-new+2-1.conf", kNew);
    tree.write("efi/loader/entries/nixos-new.conf", "options init=/nix/store/x/init\n");
    SystemdBoot boot(tree.root(), esp, 3, std::string(kNew));
    boot.find_boot_with(finder);
    CHECK(booted(boot).counting == BootCounting::Active);
    REQUIRE(boot.mark_bad());
    CHECK(searches == 1);
    CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf"});
    CHECK(tree.files_in("efi/loader/entries") == Files{"nixos-new.conf"});
  }
  SUBCASE("every entry listed (status, retry): looked for once") {
    SystemdBoot boot(tree.root(), esp, 3, "");
    boot.find_boot_with(finder);
    tree.add_entry("nixos-old.conf", kOld);
    REQUIRE(boot.entries());
    REQUIRE(boot.entries());
    CHECK(searches == 1);
    CHECK(**boot.entry_for_generation(kOld) == "nixos-old");
  }
}

TEST_CASE(
    "one generation in a Type #1 entry and a UKI: retry re-arms both, bless only the booted") {
  Tree tree;
  if (!booted_uki(tree, "boot")) return;  // booted: EFI/Linux/nixos-new+2-1.efi
  tree.add_entry("nixos-generation-2+0-1.conf", kNew);
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, std::string(kNew));
  REQUIRE(boot.mark_bad());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new+0-1.efi", "nixos-old.efi"});
  auto rearmed = boot.rearm_generation(kNew);
  REQUIRE_MESSAGE(rearmed, rearmed.error().message);
  CHECK(*rearmed == Files{"nixos-generation-2+3-0.conf", "nixos-new+3-0.efi"});
  REQUIRE(boot.mark_good());
  CHECK(tree.files_in("boot/EFI/Linux") == Files{"nixos-new.efi", "nixos-old.efi"});
  CHECK(tree.entry_files() == Files{"nixos-generation-2+3-0.conf"});  // not the booted one
}

}  // namespace bootstate

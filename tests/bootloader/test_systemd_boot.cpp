// SystemdBoot on temp --root trees: the booted entry from both LoaderEntrySelected forms, the
// boot-counting renames on real files (idempotent, and after systemd-bless-boot), entry lookup
// by generation, one-shot bytes and the status getters.
#include <doctest/doctest.h>

#include <filesystem>

#include "bootloader/systemd_boot.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::efivar_bytes;
using test::Tree;
using Files = std::vector<std::string>;

namespace {

constexpr std::string_view kNew = "/nix/store/new-nixos-system";
constexpr std::string_view kOld = "/nix/store/old-nixos-system";

// The machine right after systemd-boot 252 booted nixos-new+3-0.conf and renamed it.
void booted_252(const Tree& tree) {
  tree.add_entry("nixos-old.conf", kOld);
  tree.add_entry("nixos-new+2-1.conf", kNew);
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
  tree.set_loader_var("LoaderInfo", "systemd-boot 252.39-1~deb12u2");
}

BootedEntry booted(SystemdBoot& boot) {
  auto entry = boot.booted_entry();
  REQUIRE_MESSAGE(entry, entry.error().message);
  return *entry;
}

}  // namespace

TEST_CASE("booted entry: both LoaderEntrySelected forms give the counter of the file as it is") {
  Tree tree;
  booted_252(tree);
  SUBCASE("systemd-boot 252: the name before its rename") {}
  SUBCASE("systemd-boot >= 258: the id without counter") {
    tree.set_loader_var("LoaderEntrySelected", "nixos-new.conf");
  }
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  const BootedEntry entry = booted(boot);
  CHECK(entry.id == "nixos-new");
  CHECK(entry.counting == BootCounting::Active);
  CHECK(entry.tries_left == 2);
  CHECK(entry.tries_done == 1);
}

TEST_CASE("booted entry: Off without LoaderBootCountPath, Impossible without the loader") {
  Tree tree;
  tree.add_entry("nixos-new.conf", kNew);
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  CHECK(booted(boot).counting == BootCounting::Impossible);
  CHECK(booted(boot).why.find("not booted through EFI") != std::string::npos);

  tree.make_efi();
  CHECK(booted(boot).counting == BootCounting::Impossible);
  CHECK(booted(boot).why.find("no LoaderEntrySelected") != std::string::npos);

  tree.set_loader_var("LoaderEntrySelected", "nixos-new.conf");
  const BootedEntry off = booted(boot);
  CHECK(off.counting == BootCounting::Off);
  CHECK(off.id == "nixos-new");
  CHECK(off.tries_left == -1);
  CHECK(off.why.find("no LoaderBootCountPath") != std::string::npos);

  tree.write("run/systemd/container", "docker\n");
  CHECK(booted(boot).counting == BootCounting::Impossible);
  CHECK(booted(boot).why.find("container") != std::string::npos);
}

TEST_CASE("booted entry: a kernel command line that is not the entry's is Impossible (kexec)") {
  Tree tree;
  booted_252(tree);
  SystemdBoot as_selected(tree.root(), tree.esp(), 3, std::string(kNew));
  CHECK(booted(as_selected).counting == BootCounting::Active);
  SystemdBoot kexeced(tree.root(), tree.esp(), 3, std::string(kOld));
  CHECK(booted(kexeced).counting == BootCounting::Impossible);
  CHECK(booted(kexeced).why.find("kexec") != std::string::npos);
}

TEST_CASE("mark_bad, rearm and mark_good rename the booted file and are idempotent") {
  Tree tree;
  booted_252(tree);
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  REQUIRE(boot.mark_bad());
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf", "nixos-old.conf"});
  CHECK(booted(boot).tries_left == 0);
  REQUIRE(boot.mark_bad());
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf", "nixos-old.conf"});

  // LoaderBootCountPath now names a file that is gone; the entry is found by its id.
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+3-0.conf", "nixos-old.conf"});
  CHECK(booted(boot).tries_left == 3);
  CHECK(booted(boot).tries_done == 0);
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+3-0.conf", "nixos-old.conf"});

  REQUIRE(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  REQUIRE(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  const BootedEntry good = booted(boot);
  CHECK(good.counting == BootCounting::Active);
  CHECK(good.tries_left == -1);
  CHECK(good.why.find("already marked good") != std::string::npos);
  // The renamed file kept its contents.
  CHECK(tree.read("boot/loader/entries/nixos-new.conf")->find(kNew) != std::string::npos);
}

TEST_CASE("kTriesAsBooted: a re-arm gives back the tries the booted entry started with") {
  Tree tree;
  tree.add_entry("nixos-old.conf", kOld);
  tree.add_entry("nixos-new+4-1.conf", kNew);  // started this boot as +5-0
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+5-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+4-1.conf");
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+5-0.conf", "nixos-old.conf"});
  // A second re-arm in a later phase of the same boot: still the count the boot started with.
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+5-0.conf", "nixos-old.conf"});
}

TEST_CASE("mark_good succeeds after systemd-bless-boot renamed the entry first") {
  Tree tree;
  booted_252(tree);
  std::filesystem::rename(tree.entries_dir() + "/nixos-new+2-1.conf",
                          tree.entries_dir() + "/nixos-new.conf");
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  REQUIRE(boot.mark_good());
  CHECK(tree.entry_files() == Files{"nixos-new.conf", "nixos-old.conf"});
  // A failure after blessing can still mark it bad, with the tries done from the variable.
  REQUIRE(boot.mark_bad());
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf", "nixos-old.conf"});
}

TEST_CASE("renames never replace a file and refuse to guess between variants") {
  Tree tree;
  booted_252(tree);
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  SUBCASE("the target exists next to the booted file") {
    tree.add_entry("nixos-new.conf", kNew);
    auto good = boot.mark_good();
    REQUIRE_FALSE(good);
    CHECK(good.error().code == ErrorCode::Failed);
    CHECK(good.error().message.find("nixos-new.conf exists already") != std::string::npos);
    CHECK(tree.entry_files() == Files{"nixos-new+2-1.conf", "nixos-new.conf", "nixos-old.conf"});
  }
  SUBCASE("the booted file is gone and two variants remain") {
    std::filesystem::remove(tree.entries_dir() + "/nixos-new+2-1.conf");
    tree.add_entry("nixos-new.conf", kNew);
    tree.add_entry("nixos-new+0-1.conf", kNew);
    auto bad = boot.mark_bad();
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("several files of entry") != std::string::npos);
  }
  SUBCASE("no file of the entry at all") {
    std::filesystem::remove(tree.entries_dir() + "/nixos-new+2-1.conf");
    auto rearmed = boot.rearm();
    REQUIRE_FALSE(rearmed);
    CHECK(rearmed.error().code == ErrorCode::NotFound);
  }
}

TEST_CASE("without counting: mark_good is a no-op, mark_bad and rearm are refused") {
  Tree tree;
  tree.add_entry("nixos-new.conf", kNew);
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  SUBCASE("Impossible") {
    CHECK(boot.mark_good().error().code == ErrorCode::Unsupported);
    CHECK(boot.mark_bad().error().code == ErrorCode::Unsupported);
  }
  SUBCASE("Off") {
    tree.set_loader_var("LoaderEntrySelected", "nixos-new.conf");
    CHECK(boot.mark_good());
    CHECK(boot.mark_bad().error().code == ErrorCode::Unsupported);
    CHECK(boot.rearm().error().code == ErrorCode::Unsupported);
    CHECK(tree.entry_files() == Files{"nixos-new.conf"});
  }
}

TEST_CASE("entry_for_generation finds the entry whose init= boots it") {
  Tree tree;
  tree.add_entry("nixos-old.conf", kOld);
  tree.add_entry("nixos-new+2-1.conf", kNew);
  tree.write("boot/loader/entries/notes.txt", "options init=/nix/store/x/init\n");
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  CHECK(**boot.entry_for_generation(kNew) == "nixos-new");
  CHECK(**boot.entry_for_generation(std::string(kOld) + "/") == "nixos-old");
  CHECK_FALSE(boot.entry_for_generation("/nix/store/other")->has_value());
  CHECK_FALSE(boot.entry_for_generation("/nix/store/x")->has_value());
  // A bad entry loses to a good one for the same generation.
  tree.add_entry("nixos-zzz+0-3.conf", kOld);
  CHECK(**boot.entry_for_generation(kOld) == "nixos-old");
}

TEST_CASE("set_one_shot writes the id systemd-boot matches, as efivarfs bytes") {
  Tree tree;
  booted_252(tree);
  tree.add_entry("nixos-mid+1-2.conf", "/nix/store/mid");
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  SUBCASE("an entry without counter: its file name on every version") {
    REQUIRE(boot.set_one_shot("nixos-old"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-old.conf"));
    REQUIRE(boot.set_one_shot("nixos-old.conf"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-old.conf"));
  }
  SUBCASE("systemd-boot 252 (the booted selection kept its counter): the current file name") {
    REQUIRE(boot.set_one_shot("nixos-mid"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-mid+1-2.conf"));
  }
  SUBCASE("a loader that strips counters from ids: the id with .conf") {
    tree.set_loader_var("LoaderEntrySelected", "nixos-new.conf");
    REQUIRE(boot.set_one_shot("nixos-mid"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-mid.conf"));
  }
  SUBCASE("no evidence from this boot: LoaderInfo's version decides") {
    std::filesystem::remove(tree.root() +
                            "/sys/firmware/efi/efivars/"
                            "LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f");
    REQUIRE(boot.set_one_shot("nixos-mid"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-mid+1-2.conf"));
    tree.set_loader_var("LoaderInfo", "systemd-boot 258.1");
    REQUIRE(boot.set_one_shot("nixos-mid"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-mid.conf"));
  }
  SUBCASE("an unknown entry is refused and nothing is written") {
    auto result = boot.set_one_shot("nixos-gone");
    REQUIRE_FALSE(result);
    CHECK(result.error().code == ErrorCode::NotFound);
    CHECK_FALSE(tree.loader_var_bytes("LoaderEntryOneShot"));
  }
}

TEST_CASE("status getters: loader variables, features, loader.conf and all entries") {
  Tree tree;
  booted_252(tree);
  tree.set_loader_var("LoaderDevicePartUUID", "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
  tree.set_loader_var("LoaderEntryDefault", "nixos-old.conf");
  tree.write("sys/firmware/efi/efivars/LoaderFeatures-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f",
             std::string("\x06\0\0\0\x18\x00\0\0\0\0\0\0", 12));
  tree.write("boot/loader/loader.conf", "timeout 5\ndefault nixos-*\n");
  tree.write("boot/EFI/Linux/nixos-uki+3.efi", "MZ");
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");

  auto status = boot.loader_status();
  REQUIRE(status);
  CHECK(status->info == "systemd-boot 252.39-1~deb12u2");
  CHECK(status->entry_selected == "nixos-new+3-0.conf");
  CHECK(status->boot_count_path == "\\loader\\entries\\nixos-new+2-1.conf");
  CHECK(status->entry_default == "nixos-old.conf");
  CHECK_FALSE(status->entry_one_shot);
  CHECK(status->device_part_uuid == "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
  CHECK(status->features == 0x18);
  CHECK(status->feature_names == Files{"entry-one-shot", "boot-counting"});
  CHECK(status->loader_conf.default_pattern == "nixos-*");
  CHECK(status->loader_conf.timeout == "5");

  auto entries = boot.entries();
  REQUIRE(entries);
  REQUIRE(entries->size() == 3);
  CHECK((*entries)[0].file_name == "nixos-new+2-1.conf");
  CHECK((*entries)[0].generation == std::string(kNew));
  CHECK((*entries)[1].file_name == "nixos-old.conf");
  CHECK((*entries)[2].directory == "EFI/Linux");
  CHECK((*entries)[2].name.counter == EntryCounter{3, std::nullopt});
  CHECK_FALSE((*entries)[2].generation);
}

TEST_CASE("LoaderBootCountPath must be absolute, normalized and name a counter") {
  auto ok = parse_boot_count_path("\\EFI\\Linux\\nixos-uki+2-1.efi");
  REQUIRE(ok);
  CHECK(ok->directory == "EFI/Linux");
  CHECK(ok->file_name == "nixos-uki+2-1.efi");
  CHECK_FALSE(parse_boot_count_path("loader\\entries\\a+1.conf"));
  CHECK_FALSE(parse_boot_count_path("\\loader\\..\\entries\\a+1.conf"));
  CHECK_FALSE(parse_boot_count_path("\\loader\\\\entries\\a+1.conf"));
  CHECK_FALSE(parse_boot_count_path("\\loader\\entries\\a.conf"));
  CHECK(loader_feature_names(std::uint64_t{1} << 40) == Files{"bit 40"});
}

}  // namespace bootstate

namespace bootstate {

TEST_CASE("kTriesAsBooted: a re-arm after a mark_bad in the same boot still gives all tries") {
  Tree tree;
  tree.add_entry("nixos-new+2-1.conf", "/nix/store/new-nixos-system");
  tree.set_loader_var("LoaderEntrySelected", "nixos-new+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-new+2-1.conf");
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
  REQUIRE(boot.mark_bad());
  CHECK(tree.entry_files() == Files{"nixos-new+0-1.conf"});
  // The file now says 0 + 1; LoaderBootCountPath still says what the boot began with (2 + 1).
  REQUIRE(boot.rearm());
  CHECK(tree.entry_files() == Files{"nixos-new+3-0.conf"});
}

}  // namespace bootstate

// The firmware half of a boot and systemd-bless-boot against a real --root tree on disk.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/bootsim/efivarfs.hpp"
#include "tests/bootsim/machine.hpp"
#include "tests/bootsim/tree.hpp"

using namespace bootsim;
namespace fs = std::filesystem;

namespace {

struct TempTree {
  TempTree() {
    std::string pattern = (fs::temp_directory_path() / "bootsim-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    tree.root = pattern;
    REQUIRE(init_tree(tree));
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(tree.root, ec);
  }
  std::string add(const std::string& name, int number, const std::string& counter = "+3-0") {
    GenerationSpec spec;
    spec.toplevel = "/nix/store/" + name + "-nixos-system";
    spec.number = number;
    spec.counter = counter;
    auto file = add_generation(tree, spec);
    REQUIRE(file);
    return *file;
  }
  std::string entries() const {
    std::string out;
    std::vector<std::string> names;
    for (const auto& item : fs::directory_iterator(tree.root + "/boot/loader/entries")) {
      names.push_back(item.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) out += n + " ";
    return out;
  }
  std::string read(const std::string& relative) const {
    std::ifstream in(tree.root + "/" + relative, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  TreeOptions tree;
};

std::string var(const TempTree& t, const std::string& name) {
  auto value = EfiVars(t.tree.root).get_string(name);
  REQUIRE(value);
  return value->value_or("<absent>");
}

}  // namespace

TEST_CASE("a counted entry is renamed before boot and the OS is told both names") {
  TempTree t;
  const std::string old_gen = t.add("aaa", 1);
  const std::string new_gen = t.add("bbb", 2);
  auto boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_before == new_gen);  // newest generation sorts first
  const std::string id = new_gen.substr(0, new_gen.find('+'));
  CHECK(boot->file_after == id + "+2-1.conf");
  std::vector<std::string> expected = {old_gen, id + "+2-1.conf"};
  std::sort(expected.begin(), expected.end());
  CHECK(t.entries() == fmt::format("{} {} ", expected[0], expected[1]));
  CHECK(var(t, "LoaderEntrySelected") == new_gen);
  CHECK(var(t, "LoaderBootCountPath") == "\\loader\\entries\\" + id + "+2-1.conf");
  CHECK(boot->generation == "/nix/store/bbb-nixos-system");
  CHECK(t.read("proc/cmdline").find("init=/nix/store/bbb-nixos-system/init") != std::string::npos);
  CHECK(t.read("proc/sys/kernel/random/boot_id").size() == 37);

  // The efivarfs byte format: volatile attributes, UTF-16LE, NUL-terminated.
  const std::string raw =
      t.read("sys/firmware/efi/efivars/LoaderEntrySelected-" + std::string(kLoaderGuid));
  REQUIRE(raw.size() == 4 + 2 * (new_gen.size() + 1));
  CHECK(raw.substr(0, 4) == std::string("\x06\x00\x00\x00", 4));
  CHECK(raw[4] == new_gen[0]);
  CHECK(raw[5] == '\0');
  CHECK(raw.substr(raw.size() - 2) == std::string("\0\0", 2));

  // The next boot counts again, and has a new boot id.
  const std::string first_id = boot->boot_id;
  boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_after == id + "+1-2.conf");
  CHECK(boot->boot_id != first_id);
}

TEST_CASE("without a counter nothing is renamed and LoaderBootCountPath vanishes on reboot") {
  TempTree t;
  const std::string counted = t.add("aaa", 1);
  REQUIRE(firmware_boot(loader_options(t.tree)));
  CHECK(var(t, "LoaderBootCountPath") != "<absent>");
  const std::string plain = t.add("bbb", 2, "");
  auto boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_before == plain);
  CHECK(boot->file_after == plain);
  CHECK(var(t, "LoaderBootCountPath") == "<absent>");
  CHECK(var(t, "LoaderEntrySelected") == plain);
}

TEST_CASE("LoaderEntryOneShot wins once and is consumed — bad entries sort last") {
  TempTree t;
  const std::string old_gen = t.add("aaa", 1, "");
  t.add("bbb", 2, "+0-3");  // bad: sorts after the good one
  EfiVars vars(t.tree.root);
  auto boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_before == old_gen);

  REQUIRE(vars.set_string("LoaderEntryOneShot", "nixos-*", kNonVolatileAttrs));
  // The one-shot pattern matches the first entry in sort order, still the good one.
  boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->chosen_by == ChosenBy::OneShot);
  CHECK(boot->file_before == old_gen);
  CHECK(var(t, "LoaderEntryOneShot") == "<absent>");

  // Pointing it at the bad entry boots it: systemd-boot renames +0-3 to +0-4.
  const std::string bad_id = default_entry_id("/nix/store/bbb-nixos-system");
  REQUIRE(vars.set_string("LoaderEntryOneShot", bad_id + "+0-3.conf", kNonVolatileAttrs));
  boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_after == bad_id + "+0-4.conf");
  boot = firmware_boot(loader_options(t.tree));
  REQUIRE(boot);
  CHECK(boot->file_before == old_gen);
}

TEST_CASE("systemd 257 reports the entry without its counter") {
  TempTree t;
  const std::string file = t.add("aaa", 1);
  LoaderOptions loader = loader_options(t.tree);
  loader.version = LoaderVersion::V257;
  auto boot = firmware_boot(loader);
  REQUIRE(boot);
  CHECK(boot->selected_id == file.substr(0, file.find('+')) + ".conf");
  CHECK(var(t, "LoaderEntrySelected") == boot->selected_id);
}

TEST_CASE("an entry whose kernel is missing on the ESP is skipped — no entry is an error") {
  TempTree t;
  auto boot = firmware_boot(loader_options(t.tree));
  CHECK_FALSE(boot);
  t.add("aaa", 1);
  const std::string id = default_entry_id("/nix/store/aaa-nixos-system");
  fs::remove(t.tree.root + "/boot/EFI/nixos/" + id + "-linux-6.1-bzImage.efi");
  CHECK_FALSE(firmware_boot(loader_options(t.tree)));
}

TEST_CASE("systemd-bless-boot good: renamed, already good, from bad, gone after a re-arm") {
  TempTree t;
  t.add("aaa", 1);
  const std::string id = default_entry_id("/nix/store/aaa-nixos-system");
  const LoaderOptions loader = loader_options(t.tree);
  auto boot = firmware_boot(loader);
  REQUIRE(boot);
  REQUIRE(boot->boot_count_path);
  CHECK(bless_good(loader, *boot->boot_count_path).value() == BlessOutcome::Renamed);
  CHECK(t.entries() == id + ".conf ");
  CHECK(bless_good(loader, *boot->boot_count_path).value() == BlessOutcome::AlreadyGood);

  const std::string dir = t.tree.root + "/boot/loader/entries/";
  fs::rename(dir + id + ".conf", dir + id + "+0-1.conf");  // marked bad by bless-boot bad
  CHECK(bless_good(loader, "\\loader\\entries\\" + id + "+2-1.conf").value() ==
        BlessOutcome::RenamedFromBad);
  fs::rename(dir + id + ".conf", dir + id + "+3-0.conf");  // re-armed by bootstate
  CHECK(bless_good(loader, "\\loader\\entries\\" + id + "+2-1.conf").value() == BlessOutcome::Gone);
}

// SystemdBoot::rearm_generation, what `bootstate retry` uses: a generation's entry named bad
// (+0-DONE) gets its tries back, so systemd-boot boots it again; checked against bootsim's
// independent model of systemd-boot's entry choice and against the real systemd-bless-boot.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>

#include "bootloader/systemd_boot.hpp"
#include "tests/bootloader/tree.hpp"
#include "tests/bootsim/sdboot.hpp"

namespace bootstate {

using test::Tree;
using Files = std::vector<std::string>;

namespace {

constexpr std::string_view kNew = "/nix/store/new-nixos-system";
constexpr std::string_view kOld = "/nix/store/old-nixos-system";

std::vector<std::string> rearm(SystemdBoot& boot, std::string_view generation) {
  auto rearmed = boot.rearm_generation(generation);
  REQUIRE_MESSAGE(rearmed, rearmed.error().message);
  return *rearmed;
}

// The file systemd-boot 252 (as bootsim models boot.c) would pick with loader.conf's
// `default nixos-*`, as nixpkgs' builder writes it.
std::string sdboot_choice(const Tree& tree) {
  std::vector<bootsim::Entry> entries;
  for (const std::string& name : tree.entry_files()) {
    auto text = tree.read("boot/loader/entries/" + name);
    REQUIRE(text);
    auto entry = bootsim::parse_entry(name, *text, bootsim::LoaderVersion::V252);
    if (entry) entries.push_back(std::move(*entry));
  }
  bootsim::sort_entries(entries);
  bootsim::SelectionInput input;
  input.conf = bootsim::parse_loader_conf("default nixos-*\n");
  auto selection = bootsim::select_entry(entries, input);
  REQUIRE(selection);
  return entries[selection->index].file_name;
}

}  // namespace

TEST_CASE("rearm_generation: the bad entry of the generation gets TRIES-0, nothing else moves") {
  Tree tree;
  tree.add_entry("nixos-generation-1.conf", kOld);
  tree.add_entry("nixos-generation-2+0-1.conf", kNew);
  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
  CHECK(sdboot_choice(tree) == "nixos-generation-1.conf");  // a bad entry is skipped

  CHECK(rearm(boot, std::string(kNew) + "/") == Files{"nixos-generation-2+3-0.conf"});
  CHECK(tree.entry_files() == Files{"nixos-generation-1.conf", "nixos-generation-2+3-0.conf"});
  CHECK(sdboot_choice(tree) == "nixos-generation-2+3-0.conf");
  CHECK(tree.read("boot/loader/entries/nixos-generation-2+3-0.conf")->find(kNew) !=
        std::string::npos);

  // Not bad any more, and a good or unknown generation: nothing to do.
  CHECK(rearm(boot, kNew).empty());
  CHECK(rearm(boot, kOld).empty());
  CHECK(rearm(boot, "/nix/store/none").empty());
  CHECK(tree.entry_files() == Files{"nixos-generation-1.conf", "nixos-generation-2+3-0.conf"});
}

TEST_CASE("rearm_generation: where the tries come from") {
  Tree tree;
  tree.add_entry("nixos-generation-1.conf", kOld);
  SUBCASE("given to the constructor (boot.loader.systemd-boot.bootCounting.tries)") {
    tree.add_entry("nixos-generation-2+0-3.conf", kNew);
    tree.add_entry("nixos-other+5.conf", "/nix/store/other");
    SystemdBoot boot(tree.root(), tree.esp(), 2, "");
    CHECK(rearm(boot, kNew) == Files{"nixos-generation-2+2-0.conf"});
  }
  SUBCASE("a fresh entry the builder wrote as NAME+TRIES") {
    tree.add_entry("nixos-generation-2+0-1.conf", kNew);
    tree.add_entry("nixos-other+5.conf", "/nix/store/other");
    SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
    CHECK(rearm(boot, kNew) == Files{"nixos-generation-2+5-0.conf"});
  }
  SUBCASE("an entry being counted: LEFT + DONE") {
    tree.add_entry("nixos-generation-2+0-1.conf", kNew);
    tree.add_entry("nixos-other+1-3.conf", "/nix/store/other");
    SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
    CHECK(rearm(boot, kNew) == Files{"nixos-generation-2+4-0.conf"});
  }
  SUBCASE("no evidence: nixpkgs' default, or the tries systemd-boot exhausted when more") {
    tree.add_entry("nixos-generation-2+0-1.conf", kNew);
    tree.add_entry("nixos-third+0-6.conf", "/nix/store/third");
    SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
    CHECK(rearm(boot, kNew) == Files{"nixos-generation-2+6-0.conf"});
    CHECK(tries_from_entries({}) == kNixpkgsDefaultTries);
  }
}

TEST_CASE("tries_from_entries: counters near INT_MAX saturate instead of overflowing") {
  EntryInfo huge{"loader/entries", "x+2147483647-2147483647.conf",
                 *parse_entry_name("x+2147483647-2147483647.conf"), std::nullopt, "/boot"};
  CHECK(tries_from_entries({huge}) == 2147483647);
}

TEST_CASE("rearm_generation: a rename that cannot happen is an error naming the generation") {
  Tree tree;
  tree.add_entry("nixos-generation-2+0-1.conf", kNew);
  // The target name exists already (an entry copied by hand): never replaced.
  tree.add_entry("nixos-generation-2+3-0.conf", "/nix/store/someone-else");
  SystemdBoot boot(tree.root(), tree.esp(), 3, "");
  auto rearmed = boot.rearm_generation(kNew);
  REQUIRE_FALSE(rearmed);
  CHECK(rearmed.error().message.find(kNew) != std::string::npos);
  CHECK(tree.entry_files() == Files{"nixos-generation-2+0-1.conf", "nixos-generation-2+3-0.conf"});
}

namespace {

int run_bless(const Tree& tree, std::string_view verb, std::string& output) {
  const std::string command = fmt::format("unshare -m -p -f --mount-proc sh {} {} {} 2>&1",
                                          BOOTSTATE_BLESS_BOOT_SCRIPT, tree.root(), verb);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int raw = ::pclose(pipe);
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

}  // namespace

TEST_CASE("rearm_generation after the real systemd-bless-boot marked the entry bad") {
  Tree tree;
  tree.add_entry("nixos-generation-1.conf", kOld);
  tree.add_entry("nixos-generation-2+2-1.conf", kNew);
  tree.set_loader_var("LoaderEntrySelected", "nixos-generation-2+3-0.conf");
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\nixos-generation-2+2-1.conf");
  std::string output;
  if (run_bless(tree, "bad", output) != 0) {
    WARN_MESSAGE(false, "skipped: systemd-bless-boot sandbox unavailable: " << output);
    return;
  }
  REQUIRE(tree.entry_files() == Files{"nixos-generation-1.conf", "nixos-generation-2+0-1.conf"});

  SystemdBoot boot(tree.root(), tree.esp(), SystemdBoot::kTriesAsBooted, "");
  CHECK(rearm(boot, kNew) == Files{"nixos-generation-2+3-0.conf"});
  CHECK(sdboot_choice(tree) == "nixos-generation-2+3-0.conf");

  // The next boot of it, as systemd-boot counts it (bootsim's model of the rename); the real
  // bless-boot then blesses the re-armed entry.
  const auto counter = bootsim::parse_counter("nixos-generation-2+3-0.conf", ".conf");
  REQUIRE(counter);
  const std::string counted =
      bootsim::next_counter_name("nixos-generation-2+3-0.conf", *counter, ".conf");
  CHECK(counted == "nixos-generation-2+2-1.conf");
  std::rename((tree.entries_dir() + "/nixos-generation-2+3-0.conf").c_str(),
              (tree.entries_dir() + "/" + counted).c_str());
  tree.set_loader_var("LoaderBootCountPath", "\\loader\\entries\\" + counted);
  output.clear();
  CHECK_MESSAGE(run_bless(tree, "good", output) == 0, output);
  CHECK(tree.entry_files() == Files{"nixos-generation-1.conf", "nixos-generation-2.conf"});
}

}  // namespace bootstate

// Entry names, options lines and loader.conf: the pure parsing SystemdBoot builds on.
#include <doctest/doctest.h>

#include "bootloader/entry_name.hpp"

namespace bootstate {
namespace {

EntryName parsed(std::string_view file_name) {
  auto name = parse_entry_name(file_name);
  REQUIRE_MESSAGE(name.has_value(), file_name);
  return *name;
}

}  // namespace

TEST_CASE("entry names with counters parse like systemd-boot and compose back byte for byte") {
  struct Case {
    std::string_view file;
    std::string_view id;
    std::optional<EntryCounter> counter;
  };
  const Case cases[] = {
      {"nixos-abc123.conf", "nixos-abc123", std::nullopt},
      {"nixos-abc123+3.conf", "nixos-abc123", EntryCounter{3, std::nullopt}},
      {"nixos-abc123+3-0.conf", "nixos-abc123", EntryCounter{3, 0}},
      {"nixos-abc123+2-1.conf", "nixos-abc123", EntryCounter{2, 1}},
      {"nixos-abc123+0-3.conf", "nixos-abc123", EntryCounter{0, 3}},
      {"nixos-generation-42+1-2.conf", "nixos-generation-42", EntryCounter{1, 2}},
      // Only the last '+' can start a counter.
      {"a+b+2-1.conf", "a+b", EntryCounter{2, 1}},
      // A '+' that does not start a valid counter is part of the id.
      {"foo+bar.conf", "foo+bar", std::nullopt},
      {"foo+3x.conf", "foo+3x", std::nullopt},
      {"foo+3-.conf", "foo+3-", std::nullopt},
      {"foo+-1.conf", "foo+-1", std::nullopt},
      {"foo+3-1-2.conf", "foo+3-1-2", std::nullopt},
      {"foo+.conf", "foo+", std::nullopt},
      {"foo+99999999999.conf", "foo+99999999999", std::nullopt},  // above INT_MAX
      {"+3.conf", "+3", std::nullopt},
      // UKIs in $ESP/EFI/Linux, and suffixes in any case (FAT).
      {"nixos-uki+3-0.efi", "nixos-uki", EntryCounter{3, 0}},
      {"Arch+1.CONF", "Arch", EntryCounter{1, std::nullopt}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.file);
    const EntryName name = parsed(c.file);
    CHECK(name.id == c.id);
    CHECK(name.counter == c.counter);
    CHECK(compose_entry_name(name) == c.file);
  }
}

TEST_CASE("names that are not entries are rejected") {
  CHECK_FALSE(parse_entry_name("README.txt"));
  CHECK_FALSE(parse_entry_name(".conf"));
  CHECK_FALSE(parse_entry_name("nixos-abc.conf.bak"));
  CHECK_FALSE(parse_entry_name(""));
}

TEST_CASE("good, bad and re-armed names") {
  const EntryName booted = parsed("nixos-abc+2-1.conf");
  CHECK(compose_entry_name(good_entry_name(booted)) == "nixos-abc.conf");
  CHECK(compose_entry_name(bad_entry_name(booted, 1)) == "nixos-abc+0-1.conf");
  // Like systemd-bless-boot's make_bad(): no "-0" when nothing was done.
  CHECK(compose_entry_name(bad_entry_name(booted, 0)) == "nixos-abc+0.conf");
  CHECK(compose_entry_name(rearmed_entry_name(booted, 3)) == "nixos-abc+3-0.conf");
  CHECK(compose_entry_name(rearmed_entry_name(parsed("nixos-abc+0-3.conf"), 3)) ==
        "nixos-abc+3-0.conf");
  CHECK(compose_entry_name(rearmed_entry_name(parsed("nixos-abc.conf"), 5)) ==
        "nixos-abc+5-0.conf");
  CHECK(compose_entry_name(good_entry_name(parsed("foo+bar+1.efi"))) == "foo+bar.efi");
}

TEST_CASE("ids compare case-insensitively, as systemd-boot lowercases them") {
  CHECK(same_entry_id("NixOS-ABC", "nixos-abc"));
  CHECK_FALSE(same_entry_id("nixos-abc", "nixos-abcd"));
}

TEST_CASE("the generation of an entry is the directory of init= on its options lines") {
  CHECK(entry_generation("title NixOS\noptions init=/nix/store/aaa-nixos-system-x/init ro\n") ==
        "/nix/store/aaa-nixos-system-x");
  // systemd-boot joins several options lines; the kernel takes the last init=.
  CHECK(entry_generation("options init=/nix/store/old/init\n# comment\n"
                         "  options\tquiet init=/nix/store/new/init\n") == "/nix/store/new");
  // systemd-boot unquotes a whole quoted value.
  CHECK(entry_generation("options \"init=/nix/store/q/init\"\n") == "/nix/store/q");
  CHECK(entry_generation("options init=\"/nix/store/q/init\"\n") == "/nix/store/q");
  CHECK(entry_generation("title x\nlinux /k\n") == std::nullopt);
  CHECK(entry_generation("options init=/nix/store/x/sbin/other\n") == std::nullopt);
  CHECK(entry_generation("options init=relative/init\n") == std::nullopt);
  CHECK(entry_generation("# options init=/nix/store/c/init\n") == std::nullopt);
  CHECK(entry_generation("optionsinit=/nix/store/c/init\n") == std::nullopt);
  CHECK(cmdline_generation("BOOT_IMAGE=x init=/nix/store/a/init init=/nix/store/b/init\n") ==
        "/nix/store/b");
}

TEST_CASE("loader.conf: default and timeout, last one wins, comments ignored") {
  const LoaderConf conf = parse_loader_conf(
      "# generated\ntimeout 3\ndefault nixos-*\nconsole-mode keep\ntimeout menu-force\n");
  CHECK(conf.default_pattern == "nixos-*");
  CHECK(conf.timeout == "menu-force");
  CHECK(parse_loader_conf("").default_pattern == std::nullopt);
}

}  // namespace bootstate

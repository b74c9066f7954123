// The storage vocabulary: sizes, type names (checked against libfdisk's own GPT table) and
// attribute names.
#include <doctest/doctest.h>
#include <libfdisk/libfdisk.h>

#include "initrd/storage_names.hpp"

namespace bootstate {

TEST_CASE("parse_size reads powers of 1024 and max") {
  CHECK(parse_size("512M")->value() == 512ull << 20);
  CHECK(parse_size("20G")->value() == 20ull << 30);
  CHECK(parse_size("1T")->value() == 1ull << 40);
  CHECK(parse_size("4096")->value() == 4096);
  CHECK_FALSE(parse_size("max")->has_value());
  for (const char* bad : {"", "0", "12X", "M", "-1M", "1.5G", "99999999999999999999T"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("format_size prints whole units exactly and others to one decimal") {
  CHECK(format_size(16ull << 20) == "16 MiB");
  CHECK(format_size(1536ull << 20) == "1.5 GiB");
  CHECK(format_size(512) == "512 B");
}

TEST_CASE("every GPT short name resolves to a type libfdisk knows") {
  fdisk_context* context = fdisk_new_context();
  fdisk_label* gpt = fdisk_get_label(context, "gpt");
  REQUIRE(gpt != nullptr);
  for (const char* name : {"linux", "swap", "esp", "home", "var", "srv", "tmp", "root", "usr",
                           "xbootldr", "lvm", "raid", "bios-boot"}) {
    INFO(name);
    auto guid = resolve_type(name);
    REQUIRE(guid.has_value());
    CHECK(fdisk_label_get_parttype_from_string(gpt, guid->c_str()) != nullptr);
    CHECK(type_short_name(*guid).value() == name);
  }
  fdisk_unref_context(context);
  CHECK(*resolve_type("ESP") == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
  CHECK(*resolve_type("0fc63daf-8483-4772-8e79-3d69d8477de4") ==
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
  CHECK_FALSE(resolve_type("ext4").has_value());
  CHECK_FALSE(resolve_type("0fc63daf-8483-4772-8e79").has_value());
}

TEST_CASE("dos types are codes or the short names that have one") {
  CHECK(*resolve_dos_type("linux") == 0x83);
  CHECK(*resolve_dos_type("swap") == 0x82);
  CHECK(*resolve_dos_type("esp") == 0xef);
  CHECK(*resolve_dos_type("home") == 0x83);
  CHECK(*resolve_dos_type("8e") == 0x8e);
  CHECK(*resolve_dos_type("0x07") == 0x07);
  CHECK_FALSE(resolve_dos_type("bios-boot").has_value());
  CHECK_FALSE(resolve_dos_type("0FC63DAF-8483-4772-8E79-3D69D8477DE4").has_value());
  CHECK_FALSE(resolve_dos_type("100").has_value());
  CHECK_FALSE(resolve_dos_type("0").has_value());
}

TEST_CASE("GPT attributes by name or bit number") {
  CHECK(*parse_gpt_attrs({"required"}) == 1);
  CHECK(*parse_gpt_attrs({"legacy-boot", "63"}) == ((1ull << 2) | (1ull << 63)));
  CHECK(*parse_gpt_attrs({"grow-fs", "read-only", "hidden", "no-auto"}) ==
        ((1ull << 59) | (1ull << 60) | (1ull << 62) | (1ull << 63)));
  CHECK_FALSE(parse_gpt_attrs({"64"}).has_value());
  CHECK_FALSE(parse_gpt_attrs({"bootable"}).has_value());
  CHECK(format_gpt_attrs(0) == "none");
  CHECK(format_gpt_attrs((1ull << 2) | (1ull << 50)) == "legacy-boot,50");
}

}  // namespace bootstate

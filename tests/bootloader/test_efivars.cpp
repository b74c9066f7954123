// EFI variables as efivarfs files: the exact bytes, and reading what other writers leave.
#include <doctest/doctest.h>

#include "bootloader/efivars.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::efivar_bytes;
using test::Tree;

TEST_CASE("a string variable is 4 attribute bytes then NUL-terminated UTF-16LE") {
  auto bytes = encode_efi_string_file("nixos-abc.conf");
  REQUIRE(bytes);
  CHECK(*bytes == efivar_bytes("nixos-abc.conf"));
  const std::string expected_ab{'\x07', 0, 0, 0, 'a', 0, 'b', 0, 0, 0};
  CHECK(*encode_efi_string_file("ab") == expected_ab);
}

TEST_CASE("write_string stores exactly what efivarfs would hold, and reads back") {
  Tree tree;
  tree.make_efi();
  EfiVariables vars(tree.root());
  REQUIRE(vars.write_string("LoaderEntryOneShot", "nixos-old.conf"));
  CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("nixos-old.conf"));
  CHECK(*vars.read_string("LoaderEntryOneShot") == "nixos-old.conf");

  SUBCASE("a shorter value replaces the whole file") {
    REQUIRE(vars.write_string("LoaderEntryOneShot", "x.conf"));
    CHECK(tree.loader_var_bytes("LoaderEntryOneShot") == efivar_bytes("x.conf"));
  }
  SUBCASE("remove deletes it, and removing again is fine") {
    REQUIRE(vars.remove("LoaderEntryOneShot"));
    CHECK_FALSE(tree.loader_var_bytes("LoaderEntryOneShot"));
    CHECK(vars.remove("LoaderEntryOneShot"));
    CHECK(vars.read_string("LoaderEntryOneShot")->has_value() == false);
  }
}

TEST_CASE("non-ASCII text round-trips through UTF-16") {
  Tree tree;
  tree.make_efi();
  EfiVariables vars(tree.root());
  REQUIRE(vars.write_string("LoaderEntryDefault", "gen\xc3\xa9ration-\xe2\x82\xac"));
  CHECK(*vars.read_string("LoaderEntryDefault") == "gen\xc3\xa9ration-\xe2\x82\xac");
  const auto raw = tree.loader_var_bytes("LoaderEntryDefault");
  CHECK(raw->substr(4 + 6, 2) == std::string("\xe9\x00", 2));  // é is U+00E9
}

TEST_CASE("UTF-16 surrogate pairs and broken text, without iconv (initrds lack gconv)") {
  Tree tree;
  tree.make_efi();
  EfiVariables vars(tree.root());
  const std::string emoji = "gen-\xf0\x9f\x9a\x80";  // U+1F680, a surrogate pair in UTF-16
  REQUIRE(vars.write_string("LoaderEntryDefault", emoji));
  CHECK(tree.loader_var_bytes("LoaderEntryDefault")->substr(4 + 8, 4) ==
        std::string("\x3d\xd8\x80\xde", 4));
  CHECK(*vars.read_string("LoaderEntryDefault") == emoji);

  for (const std::string bad : {"\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80"}) {
    auto refused = encode_efi_string_file(bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::InvalidInput);
  }
  const std::string path = "sys/firmware/efi/efivars/Lone-" + std::string(kLoaderVendorGuid);
  tree.write(path, std::string("\x07\0\0\0a\0\x00\xdc", 8));  // a lone low surrogate
  auto lone = vars.read_string("Lone");
  REQUIRE_FALSE(lone);
  CHECK(lone.error().code == ErrorCode::Corrupt);
}

TEST_CASE("reading tolerates a missing NUL and reports broken variables") {
  Tree tree;
  tree.make_efi();
  EfiVariables vars(tree.root());
  const std::string path_prefix = "sys/firmware/efi/efivars/";
  const std::string suffix = std::string("-") + std::string(kLoaderVendorGuid);
  tree.write(path_prefix + "LoaderEntrySelected" + suffix, std::string("\x06\0\0\0n\0i\0x\0", 10));
  CHECK(*vars.read_string("LoaderEntrySelected") == "nix");

  tree.write(path_prefix + "Short" + suffix, std::string("\x07\0", 2));
  auto short_var = vars.read("Short");
  REQUIRE_FALSE(short_var);
  CHECK(short_var.error().code == ErrorCode::Corrupt);
  CHECK(short_var.error().message.find("Short-4a67b082") != std::string::npos);

  tree.write(path_prefix + "Odd" + suffix, std::string("\x07\0\0\0a\0b", 7));
  auto odd = vars.read_string("Odd");
  REQUIRE_FALSE(odd);
  CHECK(odd.error().code == ErrorCode::Corrupt);

  CHECK(vars.read_string("Missing")->has_value() == false);
}

TEST_CASE("LoaderFeatures is a little-endian 64-bit payload") {
  Tree tree;
  tree.make_efi();
  EfiVariables vars(tree.root());
  REQUIRE(vars.write("LoaderFeatures", std::string("\x7f\x1f\0\0\0\0\0\0", 8), 6));
  CHECK(**vars.read_u64("LoaderFeatures") == 0x1f7f);
  REQUIRE(vars.write("LoaderFeatures", std::string("\x01", 1), 6));
  CHECK_FALSE(vars.read_u64("LoaderFeatures"));
}

TEST_CASE("writing without an efivars directory names the file and errno") {
  Tree tree;
  EfiVariables vars(tree.root());
  CHECK_FALSE(vars.efi_booted());
  auto written = vars.write_string("LoaderEntryOneShot", "x.conf");
  REQUIRE_FALSE(written);
  CHECK(written.error().code == ErrorCode::Io);
  CHECK(written.error().message.find("LoaderEntryOneShot-4a67b082") != std::string::npos);
  CHECK(written.error().message.find("No such file or directory") != std::string::npos);
}

}  // namespace bootstate

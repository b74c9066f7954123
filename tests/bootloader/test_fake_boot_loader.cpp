// The fake BootLoader is strict: it refuses what SystemdBoot refuses, and records in order.
#include <doctest/doctest.h>

#include "tests/support/fake_boot_loader.hpp"

namespace bootstate {

TEST_CASE("fake boot loader: records effects in order and models the counter") {
  auto fake = FakeBootLoader::counting("nixos-new", 2, 1);
  fake.add_entry("/nix/store/old", "nixos-old");
  REQUIRE(fake.rearm());
  CHECK(fake.booted().tries_left == 3);
  REQUIRE(fake.mark_bad());
  CHECK(fake.is_bad());
  REQUIRE(fake.set_one_shot("nixos-old"));
  REQUIRE(fake.mark_good());
  CHECK(fake.is_good());
  CHECK(fake.calls() ==
        std::vector<std::string>{"rearm", "mark_bad", "set_one_shot:nixos-old", "mark_good"});
  CHECK(fake.one_shot() == "nixos-old");
  CHECK(**fake.entry_for_generation("/nix/store/old") == "nixos-old");
  CHECK_FALSE(fake.entry_for_generation("/nix/store/x")->has_value());
}

TEST_CASE("fake boot loader: rejects misuse like the real one") {
  auto impossible = FakeBootLoader::impossible();
  CHECK(impossible.mark_bad().error().code == ErrorCode::Unsupported);
  CHECK(impossible.rearm().error().code == ErrorCode::Unsupported);
  CHECK(impossible.mark_good().error().code == ErrorCode::Unsupported);
  CHECK(impossible.set_one_shot("nixos-x").error().code == ErrorCode::NotFound);
  CHECK(impossible.calls().empty());

  auto off = FakeBootLoader::counting_off("nixos-new");
  CHECK(off.mark_bad().error().code == ErrorCode::Unsupported);
  CHECK(off.mark_good());
  CHECK(off.set_one_shot("nixos-new"));
}

TEST_CASE("fake boot loader: injected failures happen once") {
  auto fake = FakeBootLoader::counting("nixos-new", 2, 1);
  fake.fail_next("mark_bad", Error{ErrorCode::Io, "rename: Read-only file system"});
  auto failed = fake.mark_bad();
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "rename: Read-only file system");
  CHECK(fake.calls().empty());
  CHECK(fake.mark_bad());
}

}  // namespace bootstate

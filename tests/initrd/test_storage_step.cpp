// StorageStepExecutor::run and check on image files made by sfdisk, checked with sfdisk
// --dump: every operation on GPT and (where it applies) dos, idempotent re-runs, a power cut
// between the write and the state commit, and an enlarged disk.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "initrd/storage_step.hpp"
#include "initrd/storage_undo.hpp"
#include "tests/initrd/image_fixture.hpp"

namespace bootstate {
namespace {

using namespace test;
using Fields = std::map<std::string, std::string>;

// `sfdisk --dump` partition lines as key → value (start, size, type, uuid, name, attrs).
std::map<int, Fields> partitions_of(const std::string& dump) {
  std::map<int, Fields> result;
  std::istringstream lines(dump);
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(" : ");
    if (colon == std::string::npos) continue;
    std::string device = line.substr(0, colon);
    std::size_t digits = device.find_last_not_of("0123456789") + 1;
    int number = std::stoi(device.substr(digits));
    std::istringstream items(line.substr(colon + 3));
    std::string item;
    while (std::getline(items, item, ',')) {
      auto equals = item.find('=');
      if (equals == std::string::npos) continue;
      std::string key =
          item.substr(item.find_first_not_of(' '), equals - item.find_first_not_of(' '));
      std::string value = item.substr(item.find_first_not_of(' ', equals + 1));
      if (!value.empty() && value.front() == '"') value = value.substr(1, value.size() - 2);
      result[number][key] = value;
    }
  }
  return result;
}

}  // namespace

TEST_CASE("GPT: every operation in one step, written once, then a no-op re-run") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  StepFixture fixture(
      root, {grow("/dev/vda", "PARTLABEL=swap", "12M"),
             add("/dev/vda", "home", "home", "8M", "5d3c7e5e-9b1a-4c2f-8f7d-2a1b3c4d5e6f"),
             set_name("/dev/vda", "1", "nixos"), set_type("/dev/vda", "PARTLABEL=nixos", "root"),
             set_attrs("/dev/vda", "PARTLABEL=home", {"grow-fs", "legacy-boot"})});
  StorageStepExecutor executor;
  CHECK(executor.check(fixture.context) == CheckResult::NotApplied);
  StepOutcome outcome = executor.run(fixture.context);
  INFO(outcome.message);
  REQUIRE(outcome.ok);

  auto parts = partitions_of(root.dump("/dev/vda"));
  REQUIRE(parts.size() == 3);
  CHECK(parts[1]["name"] == "nixos");
  CHECK(parts[1]["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
  CHECK(parts[2]["size"] == "24576");
  CHECK(parts[3]["name"] == "home");
  CHECK(parts[3]["start"] == "59392");  // after the grown swap, on the 1 MiB grain
  CHECK(parts[3]["size"] == "16384");
  CHECK(parts[3]["uuid"] == "5D3C7E5E-9B1A-4C2F-8F7D-2A1B3C4D5E6F");
  CHECK(parts[3]["type"] == "933AC7E1-2EB4-4F13-B844-0E14E2AEF915");
  CHECK(parts[3]["attrs"] == "LegacyBIOSBootable GUID:59");
  ImageRoot::shell("sfdisk --verify -q '" + root.host_path("/dev/vda") + "' >/dev/null");

  auto undo = decode_undo(outcome.undo_record);
  REQUIRE(undo.has_value());
  REQUIRE(undo->disks.size() == 1);
  CHECK(undo->disks[0].added.size() == 1);
  CHECK(undo->has_grow());
  CHECK(executor.check(fixture.context) == CheckResult::Applied);

  std::uint64_t written = root.digest("/dev/vda");
  fixture.record.undo_record = outcome.undo_record;
  StepOutcome again = executor.run(fixture.context);
  INFO(again.message);
  CHECK(again.ok);
  CHECK(again.message.rfind("already in effect", 0) == 0);
  CHECK(root.digest("/dev/vda") == written);
  CHECK(again.undo_record == outcome.undo_record);
}

TEST_CASE("dos: grow and set-partition-type apply — names and add are refused untouched") {
  ImageRoot root;
  root.make_disk("/dev/sda", "64M", kDosScript);
  StepFixture fixture(root, {set_type("/dev/sda", "2", "lvm"), grow("/dev/sda", "2", "max")});
  StorageStepExecutor executor;
  StepOutcome outcome = executor.run(fixture.context);
  INFO(outcome.message);
  REQUIRE(outcome.ok);
  auto parts = partitions_of(root.dump("/dev/sda"));
  CHECK(parts[2]["type"] == "8e");
  CHECK(std::stoull(parts[2]["start"]) + std::stoull(parts[2]["size"]) == 131072);
  std::uint64_t written = root.digest("/dev/sda");
  CHECK(executor.run(fixture.context).ok);
  CHECK(root.digest("/dev/sda") == written);

  StepFixture names(root, {set_name("/dev/sda", "1", "x")});
  StepOutcome refused = executor.run(names.context);
  CHECK_FALSE(refused.ok);
  CHECK(refused.message.find("dos partition tables have no partition names") != std::string::npos);
  CHECK(root.digest("/dev/sda") == written);
}

TEST_CASE("dos PARTUUID references use the disk id, as blkid names them") {
  ImageRoot root;
  root.make_disk("/dev/sda", "64M", std::string("label-id: 0x1234abcd\n") + kDosScript);
  StepFixture fixture(root, {set_type("/dev/sda", "PARTUUID=1234abcd-01", "0x8e")});
  StepOutcome outcome = StorageStepExecutor().run(fixture.context);
  INFO(outcome.message);
  REQUIRE(outcome.ok);
  CHECK(partitions_of(root.dump("/dev/sda"))[1]["type"] == "8e");
}

TEST_CASE("power cut between write and commit: the re-run keeps the pre-step values") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  std::string original = root.dump("/dev/vda");
  std::vector<StorageOperation> ops = {set_name("/dev/vda", "PARTLABEL=root", "nixos"),
                                       set_attrs("/dev/vda", "2", {"no-auto"}),
                                       add("/dev/vda", "home", "home", "max")};
  StorageStepExecutor executor;
  StepFixture first(root, ops);
  StepOutcome lost = executor.run(first.context);  // its outcome never reaches the store
  REQUIRE(lost.ok);

  StepFixture resumed(root, ops);  // same work directory, record still empty
  REQUIRE(resumed.record.undo_record.empty());
  StepOutcome outcome = executor.run(resumed.context);
  INFO(outcome.message);
  REQUIRE(outcome.ok);
  auto undo = decode_undo(outcome.undo_record);
  REQUIRE(undo.has_value());
  CHECK(*undo == *decode_undo(lost.undo_record));
  REQUIRE(undo->disks[0].changed.size() == 2);
  CHECK(*undo->disks[0].changed[0].name == "root");

  // Without the journal (a volatile work directory) the added partition is still claimed,
  // but old values are unknown and not invented.
  std::filesystem::remove(root.work_dir() + "/storage-undo.json");
  StepFixture blind(root, ops);
  auto partial = decode_undo(executor.run(blind.context).undo_record);
  CHECK(partial->disks[0].added.size() == 1);
  CHECK(partial->disks[0].changed.empty());

  resumed.record.undo_record = outcome.undo_record;
  StepOutcome reverted = executor.revert(resumed.context);
  INFO(reverted.message);
  REQUIRE(reverted.ok);
  auto before = partitions_of(original);
  auto after = partitions_of(root.dump("/dev/vda"));
  CHECK(after == before);
}

TEST_CASE("revert of an interrupted step with neither undo record nor journal says so") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  std::vector<StorageOperation> ops = {add("/dev/vda", "home", "home", "8M")};
  StorageStepExecutor executor;
  StepFixture interrupted(root, ops);
  REQUIRE(executor.run(interrupted.context).ok);  // its outcome never reaches the store
  std::filesystem::remove(root.work_dir() + "/storage-undo.json");  // /run was a tmpfs
  std::string changed = root.dump("/dev/vda");
  StepFixture stale(root, ops);
  stale.record.state = StepState::Running;
  StepOutcome reverted = executor.revert(stale.context);
  CHECK_FALSE(reverted.ok);
  CHECK(reverted.message.find("cannot tell what it changed") != std::string::npos);
  CHECK(root.dump("/dev/vda") == changed);

  // A step that finished with nothing to record did change nothing: that is the truth.
  StepFixture finished(root, ops);
  finished.record.state = StepState::Done;
  CHECK(executor.revert(finished.context).ok);
}

TEST_CASE("an enlarged disk: grow to max reaches the new end and moves the backup header") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", "label: gpt\nstart=2048, type=linux, name=root\n");
  ImageRoot::shell("truncate -s 128M '" + root.host_path("/dev/vda") + "'");
  StepFixture fixture(root, {grow("/dev/vda", "PARTLABEL=root", "max")});
  StepOutcome outcome = StorageStepExecutor().run(fixture.context);
  INFO(outcome.message);
  REQUIRE(outcome.ok);
  auto parts = partitions_of(root.dump("/dev/vda"));
  CHECK(std::stoull(parts[1]["start"]) + std::stoull(parts[1]["size"]) - 1 == 262110);
  ImageRoot::shell("sfdisk --verify -q '" + root.host_path("/dev/vda") + "' >/dev/null");
}

TEST_CASE("two disks in one step: both validated before either is written") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  root.make_disk("/dev/vdb", "64M", kGptScript);
  std::uint64_t a = root.digest("/dev/vda");
  std::uint64_t b = root.digest("/dev/vdb");
  StepFixture fixture(root,
                      {grow("/dev/vda", "2", "max"), grow("/dev/vdb", "PARTLABEL=nope", "max")});
  StepOutcome outcome = StorageStepExecutor().run(fixture.context);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.message.find("PARTLABEL=nope") != std::string::npos);
  CHECK(root.digest("/dev/vda") == a);
  CHECK(root.digest("/dev/vdb") == b);
}

}  // namespace bootstate

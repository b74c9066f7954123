// Refusals leave the disk byte-identical; `require` names device and field; revert and
// describe on images. Signatures are real: mkfs.ext4 and mkswap on a scratch file, copied into
// the image with dd, as data left behind in unpartitioned space would be.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "initrd/storage_step.hpp"
#include "tests/initrd/image_fixture.hpp"

namespace bootstate {
namespace {

using namespace test;

// Puts an ext4 file system of 4 MiB (label "leftover") at byte `offset` of `disk`.
void plant_ext4(const ImageRoot& root, const std::string& disk, std::uint64_t offset) {
  std::string scratch = root.root() + "/scratch.ext4";
  ImageRoot::shell("rm -f '" + scratch + "' && truncate -s 4M '" + scratch + "'");
  ImageRoot::shell("mkfs.ext4 -q -F -L leftover '" + scratch + "' >/dev/null 2>&1");
  ImageRoot::shell("dd if='" + scratch + "' of='" + root.host_path(disk) +
                   "' bs=1M seek=" + std::to_string(offset >> 20) + " conv=notrunc status=none");
}

void plant_swap(const ImageRoot& root, const std::string& disk, std::uint64_t offset) {
  std::string scratch = root.root() + "/scratch.swap";
  ImageRoot::shell("rm -f '" + scratch + "' && truncate -s 1M '" + scratch + "'");
  ImageRoot::shell("mkswap -q '" + scratch + "' >/dev/null 2>&1");
  ImageRoot::shell("dd if='" + scratch + "' of='" + root.host_path(disk) +
                   "' bs=1M seek=" + std::to_string(offset >> 20) + " conv=notrunc status=none");
}

// Runs `ops` on a fresh kGptScript disk, expects failure mentioning `words`, and checks
// that not a byte changed.
void expect_refused(std::vector<StorageOperation> ops, const std::string& words,
                    const std::string& script = kGptScript) {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", script);
  std::uint64_t before = root.digest("/dev/vda");
  StepFixture fixture(root, std::move(ops));
  StepOutcome outcome = StorageStepExecutor().run(fixture.context);
  INFO(outcome.message);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.message.find(words) != std::string::npos);
  CHECK(root.digest("/dev/vda") == before);
}

constexpr std::uint64_t kFreeTail = 25ull << 20;  // first byte after swap in kGptScript

}  // namespace

TEST_CASE("bad references, no room, overlap and shrink fail with the disk untouched") {
  expect_refused({grow("/dev/vda", "PARTLABEL=nothing", "max")}, "no partition matches");
  expect_refused({set_name("/dev/vda", "7", "x")}, "no partition matches 7");
  expect_refused({grow("/dev/vda", "PARTUUID=00000000-0000-0000-0000-000000000001", "max")},
                 "PARTUUID");
  expect_refused({set_type("/dev/vda", "PARTLABEL=twin", "linux")}, "ambiguous",
                 "label: gpt\nstart=2048, size=8M, name=twin\nsize=8M, name=twin\n");
  expect_refused({grow("/dev/vda", "2", "1G")}, "usable space of the disk");
  expect_refused({grow("/dev/vda", "1", "20M")}, "next partition");
  expect_refused({grow("/dev/vda", "1", "4M")}, "shrink");
  expect_refused({add("/dev/vda", "big", "linux", "100M")}, "no free region");
  expect_refused({add("/dev/vda", "root", "swap", "1M")}, "exists with type");
  // A valid first operation is not written when a later one fails.
  expect_refused({set_name("/dev/vda", "1", "fine"), set_type("/dev/vda", "2", "no-such-type")},
                 "unknown partition type");
  ImageRoot root;
  StepFixture missing(root, {grow("/dev/vdz", "1", "max")});
  CHECK_FALSE(StorageStepExecutor().run(missing.context).ok);
}

TEST_CASE("space holding a signature is not handed out without allow-destroy") {
  for (bool use_add : {false, true}) {
    ImageRoot root;
    root.make_disk("/dev/vda", "64M", kGptScript);
    plant_ext4(root, "/dev/vda", kFreeTail);
    std::uint64_t before = root.digest("/dev/vda");
    StorageOperation op = use_add ? add("/dev/vda", "data", "linux", "max")
                                  : grow("/dev/vda", "PARTLABEL=swap", "max");
    StepFixture refused(root, {op});
    StepOutcome outcome = StorageStepExecutor().run(refused.context);
    INFO(outcome.message);
    CHECK_FALSE(outcome.ok);
    CHECK(outcome.message.find("ext4 signature (label \"leftover\")") != std::string::npos);
    CHECK(outcome.message.find("allow-destroy") != std::string::npos);
    CHECK(root.digest("/dev/vda") == before);

    op.allow_destroy = true;
    StepFixture allowed(root, {op});
    StepOutcome done = StorageStepExecutor().run(allowed.context);
    INFO(done.message);
    CHECK(done.ok);
  }
  ImageRoot root;  // swap is recognised as well
  root.make_disk("/dev/vda", "64M", kGptScript);
  plant_swap(root, "/dev/vda", kFreeTail);
  StepFixture refused(root, {grow("/dev/vda", "2", "max")});
  StepOutcome outcome = StorageStepExecutor().run(refused.context);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.message.find("swap signature") != std::string::npos);
}

TEST_CASE("require probes with libblkid and names device and field when it fails") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  plant_ext4(root, "/dev/vda", 1ull << 20);  // the file system of partition 1 ("root")
  StorageOperation good = require("PARTLABEL=root");
  good.fstype = "ext4";
  good.label = "leftover";
  good.min_size = "16M";
  StorageOperation by_label = require("LABEL=leftover");
  by_label.fstype = "ext4";
  StepFixture passing(root, {good, by_label, set_name("/dev/vda", "2", "swap2")});
  StepOutcome outcome = StorageStepExecutor().run(passing.context);
  INFO(outcome.message);
  CHECK(outcome.ok);

  std::uint64_t before = root.digest("/dev/vda");
  StorageOperation wrong_fs = require("PARTLABEL=root");
  wrong_fs.fstype = "btrfs";
  StepFixture failing(root, {set_name("/dev/vda", "2", "swap3"), wrong_fs});
  StepOutcome failed = StorageStepExecutor().run(failing.context);
  CHECK_FALSE(failed.ok);
  CHECK(failed.message.find("require PARTLABEL=root") != std::string::npos);
  CHECK(failed.message.find("fstype is \"ext4\", expected \"btrfs\"") != std::string::npos);
  CHECK(root.digest("/dev/vda") == before);

  StorageOperation too_small = require("/dev/vda");
  too_small.min_size = "1G";
  StepFixture small(root, {too_small});
  StepOutcome small_outcome = StorageStepExecutor().run(small.context);
  CHECK_FALSE(small_outcome.ok);
  CHECK(small_outcome.message.find("size is 64 MiB, expected at least 1 GiB") != std::string::npos);

  StorageOperation unformatted = require("PARTLABEL=swap2");
  unformatted.uuid = "1234";
  StepFixture none(root, {unformatted});
  StepOutcome none_outcome = StorageStepExecutor().run(none.context);
  INFO(none_outcome.message);
  CHECK(none_outcome.message.find("uuid is (none)") != std::string::npos);
  StepFixture unknown(root, {require("LABEL=nowhere")});
  CHECK(StorageStepExecutor().run(unknown.context).message.find("no device matches") !=
        std::string::npos);
}

TEST_CASE("revert deletes added partitions and restores names, types and attributes") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  std::string original = root.dump("/dev/vda");
  StepFixture fixture(
      root, {add("/dev/vda", "home", "home", "8M"), set_name("/dev/vda", "1", "nixos"),
             set_type("/dev/vda", "2", "linux"), set_attrs("/dev/vda", "2", {"required"})});
  StorageStepExecutor executor;
  StepOutcome outcome = executor.run(fixture.context);
  REQUIRE(outcome.ok);
  fixture.record.undo_record = outcome.undo_record;
  CHECK(storage_step_revertible(fixture.step));
  StepOutcome reverted = executor.revert(fixture.context);
  INFO(reverted.message);
  REQUIRE(reverted.ok);
  CHECK(root.dump("/dev/vda") == original);
  StepOutcome twice = executor.revert(fixture.context);  // an interrupted revert re-runs
  CHECK(twice.ok);
  CHECK(twice.message == "already undone");
}

TEST_CASE("revert refuses to delete an added partition that now holds data") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  StepFixture fixture(root, {add("/dev/vda", "home", "home", "8M")});
  StorageStepExecutor executor;
  StepOutcome outcome = executor.run(fixture.context);
  REQUIRE(outcome.ok);
  plant_ext4(root, "/dev/vda", kFreeTail);  // someone made a file system in it
  std::uint64_t before = root.digest("/dev/vda");
  fixture.record.undo_record = outcome.undo_record;
  StepOutcome reverted = executor.revert(fixture.context);
  CHECK_FALSE(reverted.ok);
  CHECK(reverted.message.find("holds a ext4 signature; not deleting it") != std::string::npos);
  CHECK(root.digest("/dev/vda") == before);
}

TEST_CASE("a grow is not undone and revert says so") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  StepFixture fixture(root, {grow("/dev/vda", "2", "max"), set_name("/dev/vda", "2", "big")});
  StorageStepExecutor executor;
  StepOutcome outcome = executor.run(fixture.context);
  REQUIRE(outcome.ok);
  fixture.record.undo_record = outcome.undo_record;
  std::uint64_t grown = root.digest("/dev/vda");
  CHECK_FALSE(storage_step_revertible(fixture.step));
  StepOutcome reverted = executor.revert(fixture.context);
  CHECK_FALSE(reverted.ok);
  CHECK(reverted.message == "grow-partition cannot be undone; the grown partition is kept");
  CHECK(root.digest("/dev/vda") == grown);
}

TEST_CASE("describe shows both tables, marks grows irreversible and writes nothing") {
  ImageRoot root;
  root.make_disk("/dev/vda", "64M", kGptScript);
  std::uint64_t before = root.digest("/dev/vda");
  StepFixture fixture(
      root, {grow("/dev/vda", "PARTLABEL=swap", "12M"), add("/dev/vda", "home", "home", "max")});
  StepPreview preview = StorageStepExecutor().describe(fixture.context);
  CHECK(preview.blocker.empty());
  CHECK(preview.irreversible);
  std::string text;
  for (const std::string& line : preview.lines) text += line + "\n";
  INFO(text);
  CHECK(text.find("grow partition 2 (swap) from 8 MiB to 12 MiB") != std::string::npos);
  CHECK(text.find(" before:") != std::string::npos);
  CHECK(text.find(" after:") != std::string::npos);
  CHECK(text.find("home") != std::string::npos);
  rapidjson::Document detail;
  detail.Parse(preview.detail_json.c_str());
  REQUIRE(detail.IsObject());
  const auto& disk = detail["disks"][0];
  CHECK(std::string(disk["disk"].GetString()) == "/dev/vda");
  CHECK(disk["before"].Size() == 2);
  CHECK(disk["after"].Size() == 3);
  CHECK(disk["after"][1]["size"].GetUint64() == 24576);
  CHECK(disk["operations"][1]["change"].GetBool());
  CHECK(root.digest("/dev/vda") == before);

  StepFixture blocked(root, {set_name("/dev/vda", "PARTLABEL=gone", "x")});
  StepPreview blocker = StorageStepExecutor().describe(blocked.context);
  CHECK(blocker.blocker.find("PARTLABEL=gone") != std::string::npos);
  CHECK_FALSE(blocker.irreversible);
}

}  // namespace bootstate

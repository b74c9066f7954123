// The pure planner and undo records, on tables built in memory: every refusal and every
// "already in effect" decision without a disk.
#include <doctest/doctest.h>

#include "initrd/storage_model.hpp"
#include "initrd/storage_names.hpp"
#include "initrd/storage_undo.hpp"
#include "tests/initrd/image_fixture.hpp"

namespace bootstate {
namespace {

using test::add;
using test::grow;
using test::set_attrs;
using test::set_name;
using test::set_type;

const std::string kLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

// 64 MiB disk as in kGptScript: root 2048+32768, swap 34816+16384, usable 2048..131038.
TableModel gpt_table() {
  TableModel table;
  table.disk = "/dev/vda";
  table.first_lba = 2048;
  table.last_lba = 131038;
  table.max_partitions = 128;
  table.partitions = {
      {1, 2048, 32768, "root", kLinux, "11111111-1111-1111-1111-111111111111", 0, false},
      {2, 34816, 16384, "swap", *resolve_type("swap"), "22222222-2222-2222-2222-222222222222", 0,
       false},
  };
  return table;
}

Expected<DiskPlan> plan(const TableModel& table, const std::vector<StorageOperation>& ops) {
  std::vector<const StorageOperation*> pointers;
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    pointers.push_back(&ops[i]);
    indices.push_back(i);
  }
  return plan_disk(table, pointers, indices);
}

}  // namespace

TEST_CASE("references resolve by number, PARTLABEL and PARTUUID, and fail when unknown") {
  TableModel table = gpt_table();
  CHECK(*resolve_partition(table, "2") == 2);
  CHECK(*resolve_partition(table, "PARTLABEL=root") == 1);
  CHECK(*resolve_partition(table, "PARTUUID=22222222-2222-2222-2222-222222222222") == 2);
  CHECK(resolve_partition(table, "3").error().code == ErrorCode::NotFound);
  CHECK(resolve_partition(table, "PARTLABEL=home").error().message.find("PARTLABEL=home") !=
        std::string::npos);
  table.partitions[1].name = "root";
  auto ambiguous = resolve_partition(table, "PARTLABEL=root");
  REQUIRE_FALSE(ambiguous.has_value());
  CHECK(ambiguous.error().message.find("ambiguous") != std::string::npos);
}

TEST_CASE("grow to a size or to max — equal size is in effect — shrink and overflow refused") {
  TableModel table = gpt_table();
  auto planned = plan(table, {grow("/dev/vda", "2", "max")});
  REQUIRE(planned.has_value());
  CHECK(planned->ops[0].change);
  CHECK(planned->after.find(2)->end() == table.last_lba);
  CHECK(planned->ops[0].claimed_start == 34816 + 16384);
  CHECK(planned->ops[0].claimed_size == table.last_lba - (34816 + 16384) + 1);

  auto again = plan(planned->after, {grow("/dev/vda", "2", "max")});
  CHECK_FALSE(again->ops[0].change);

  CHECK_FALSE(plan(table, {grow("/dev/vda", "1", "16M")})->ops[0].change);
  auto shrink = plan(table, {grow("/dev/vda", "1", "8M")});
  REQUIRE_FALSE(shrink.has_value());
  CHECK(shrink.error().message.find("shrink") != std::string::npos);
  // Partition 1 is followed by partition 2: growing over it is an overlap.
  auto overlap = plan(table, {grow("/dev/vda", "1", "20M")});
  REQUIRE_FALSE(overlap.has_value());
  CHECK(overlap.error().message.find("next partition") != std::string::npos);
  auto beyond = plan(table, {grow("/dev/vda", "2", "1G")});
  REQUIRE_FALSE(beyond.has_value());
  CHECK(beyond.error().message.find("usable space of the disk") != std::string::npos);
}

TEST_CASE("add places fixed sizes first-fit and aligned, max in the largest region") {
  TableModel table = gpt_table();
  auto planned =
      plan(table, {add("/dev/vda", "home", "home", "8M"), add("/dev/vda", "var", "var", "max")});
  REQUIRE(planned.has_value());
  const PartitionModel* home = planned->after.find(3);
  REQUIRE(home != nullptr);
  CHECK(home->start == 51200);  // 25 MiB: right after swap, on the 1 MiB grain
  CHECK(home->size == 16384);
  const PartitionModel* var = planned->after.find(4);
  REQUIRE(var != nullptr);
  CHECK(var->start == 67584);
  CHECK(var->end() == table.last_lba);

  auto again = plan(planned->after, {add("/dev/vda", "home", "home", "8M")});
  CHECK_FALSE(again->ops[0].change);
  auto wrong_type = plan(planned->after, {add("/dev/vda", "home", "swap", "8M")});
  CHECK_FALSE(wrong_type.has_value());
  auto no_room = plan(table, {add("/dev/vda", "big", "linux", "1G")});
  REQUIRE_FALSE(no_room.has_value());
  CHECK(no_room.error().message.find("no free region") != std::string::npos);
}

TEST_CASE("set-* are in effect when equal — rename is found again by its new name") {
  TableModel table = gpt_table();
  auto planned = plan(table, {set_name("/dev/vda", "PARTLABEL=root", "nixos"),
                              set_type("/dev/vda", "PARTLABEL=nixos", "root"),
                              set_attrs("/dev/vda", "1", {"grow-fs"})});
  REQUIRE(planned.has_value());
  CHECK(planned->after.find(1)->name == "nixos");
  CHECK(planned->after.find(1)->type == *resolve_type("root"));
  CHECK(planned->after.find(1)->attrs == 1ull << 59);

  auto again = plan(planned->after, {set_name("/dev/vda", "PARTLABEL=root", "nixos"),
                                     set_type("/dev/vda", "PARTLABEL=nixos", "root"),
                                     set_attrs("/dev/vda", "1", {"grow-fs"})});
  REQUIRE(again.has_value());
  CHECK_FALSE(again->changes());
}

TEST_CASE("dos tables refuse names, attributes and add, but grow and retype") {
  TableModel table = gpt_table();
  table.label = LabelKind::Dos;
  table.max_partitions = 4;
  for (auto& partition : table.partitions) {
    partition.name.clear();
    partition.type = "83";
  }
  CHECK(plan(table, {set_name("/dev/vda", "1", "x")}).error().code == ErrorCode::Unsupported);
  CHECK(plan(table, {set_attrs("/dev/vda", "1", {"1"})}).error().code == ErrorCode::Unsupported);
  CHECK(plan(table, {add("/dev/vda", "x", "linux", "1M")}).error().code == ErrorCode::Unsupported);
  auto planned = plan(table, {set_type("/dev/vda", "2", "swap"), grow("/dev/vda", "2", "max")});
  REQUIRE(planned.has_value());
  CHECK(planned->after.find(2)->type == "82");
}

TEST_CASE("undo records: diff, merge keeps the earliest value, JSON round trip") {
  TableModel table = gpt_table();
  auto planned =
      plan(table, {set_name("/dev/vda", "1", "nixos"), add("/dev/vda", "home", "home", "8M")});
  REQUIRE(planned.has_value());
  planned->after.find(3)->uuid = "33333333-3333-3333-3333-333333333333";
  UndoRecord first;
  first.disks.push_back(undo_for_plan(*planned));
  REQUIRE(first.disks[0].changed.size() == 1);
  CHECK(*first.disks[0].changed[0].name == "root");
  REQUIRE(first.disks[0].added.size() == 1);

  // A re-run after a power cut sees everything in effect; its own diff is empty except the
  // add it still claims. Merged with the journal, the old name survives.
  auto rerun = plan(planned->after,
                    {set_name("/dev/vda", "1", "nixos"), add("/dev/vda", "home", "home", "8M")});
  REQUIRE(rerun.has_value());
  UndoRecord second;
  second.disks.push_back(undo_for_plan(*rerun));
  CHECK(second.disks[0].changed.empty());
  CHECK(second.disks[0].added.size() == 1);
  UndoRecord merged = *decode_undo(encode_undo(first));
  merge_undo(merged, second);
  CHECK(merged.disks[0].added.size() == 1);
  CHECK(*merged.disks[0].changed[0].name == "root");

  auto reverted = plan_revert(planned->after, merged.disks[0]);
  REQUIRE(reverted.has_value());
  CHECK(reverted->after.partitions == table.partitions);
  CHECK(reverted->deleted.size() == 1);
  CHECK_FALSE(plan_revert(reverted->after, merged.disks[0])->changes);
}

TEST_CASE("attribute bit 63 survives the undo record") {
  UndoRecord record;
  UndoChanged changed;
  changed.number = 1;
  changed.attrs = (1ull << 63) | 1;
  record.disks.push_back(UndoDisk{"/dev/vda", LabelKind::Gpt, {}, {changed}});
  CHECK(*decode_undo(encode_undo(record))->disks[0].changed[0].attrs == ((1ull << 63) | 1));
  CHECK(decode_undo("").value().empty());
  CHECK_FALSE(decode_undo("[1,2").has_value());
}

}  // namespace bootstate

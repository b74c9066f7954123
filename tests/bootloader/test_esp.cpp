// ESP discovery: the preference order over an injected lookup, and libblkid on a real GPT disk
// image made with sfdisk and mkfs.vfat (no loop device, no root needed).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "bootloader/esp.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::Tree;

namespace {

class FakeLookup final : public PartitionLookup {
 public:
  std::map<std::string, std::string> by_partuuid;
  std::vector<std::string> esp_typed;
  int calls = 0;

  Expected<std::optional<std::string>> find_by_partuuid(std::string_view uuid) override {
    ++calls;
    auto it = by_partuuid.find(std::string(uuid));
    if (it == by_partuuid.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Expected<std::vector<std::string>> find_esp_typed() override {
    ++calls;
    return esp_typed;
  }
};

constexpr std::string_view kEspUuid = "5a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

// Runs a shell command line of the test's own making; the tools it needs are named so a
// missing one fails with the package to install instead of passing vacuously.
void run(const std::string& command) {
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
}

// An 8 MiB GPT disk image: partition 1 is a 4 MiB vfat ESP at 1 MiB, partition 2 Linux.
void make_disk_image(const std::string& path) {
  REQUIRE_MESSAGE(std::system("command -v sfdisk >/dev/null") == 0,
                  "sfdisk is missing: apt-get install fdisk");
  REQUIRE_MESSAGE(std::system("command -v mkfs.vfat >/dev/null") == 0,
                  "mkfs.vfat is missing: apt-get install dosfstools");
  run("truncate -s 8M " + path);
  run("printf 'label: gpt\\nstart=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, "
      "uuid=" +
      std::string(kEspUuid) +
      ", name=\"EFI system\"\\nstart=10240, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n"
      "start=14336, type=BC13C2FF-59E6-4262-A352-B275FD779F17, name=\"XBOOTLDR\"\\n' | "
      "sfdisk --quiet " +
      path);
  run("mkfs.vfat --offset 2048 " + path + " 4096 >/dev/null 2>&1");
}

}  // namespace

TEST_CASE("choose_esp: --esp wins, then LoaderDevicePartUUID, then the ESP partition type") {
  FakeLookup lookup;
  lookup.by_partuuid["5A0B"] = "/dev/vdb1";
  lookup.esp_typed = {"/dev/vda1", "/dev/vdb1"};

  auto explicit_choice = choose_esp("/boot", std::string("5A0B"), lookup);
  CHECK(explicit_choice->path == "/boot");
  CHECK(explicit_choice->device.empty());
  CHECK(lookup.calls == 0);

  auto by_uuid = choose_esp("", std::string("5A0B"), lookup);
  CHECK(by_uuid->device == "/dev/vdb1");
  CHECK(by_uuid->reason == "LoaderDevicePartUUID=5A0B");

  auto by_type = choose_esp("", std::string("FFFF"), lookup);
  CHECK(by_type->device == "/dev/vda1");
  CHECK(by_type->reason.find("c12a7328") != std::string::npos);

  lookup.esp_typed.clear();
  auto none = choose_esp("", std::string("FFFF"), lookup);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::NotFound);
  CHECK(none.error().message.find("FFFF") != std::string::npos);
}

TEST_CASE("libblkid reads the GPT and the vfat file system of a disk image file") {
  Tree tree;
  const std::string image = tree.root() + "/disk.img";
  make_disk_image(image);

  auto table = probe_partition_table(image);
  REQUIRE_MESSAGE(table, table.error().message);
  REQUIRE(table->size() == 3);
  CHECK((*table)[2].type == kXbootldrTypeGuid);
  const PartitionInfo& esp = (*table)[0];
  CHECK(esp.number == 1);
  CHECK(esp.type == kEspTypeGuid);
  CHECK(esp.partuuid == kEspUuid);
  CHECK(esp.name == "EFI system");
  CHECK(esp.start_bytes == 1024 * 1024);
  CHECK(esp.size_bytes == 4 * 1024 * 1024);
  CHECK((*table)[1].type == "0fc63daf-8483-4772-8e79-3d69d8477de4");

  auto fs_type = probe_filesystem_type(image, esp.start_bytes, esp.size_bytes);
  REQUIRE(fs_type);
  CHECK(*fs_type == "vfat");
  auto nothing = probe_filesystem_type(image, (*table)[1].start_bytes, 0);
  REQUIRE(nothing);
  CHECK_FALSE(nothing->has_value());

  tree.write("blank.img", std::string(64 * 1024, '\0'));
  auto no_table = probe_partition_table(tree.root() + "/blank.img");
  REQUIRE_FALSE(no_table);
  CHECK(no_table.error().code == ErrorCode::NotFound);
  auto missing = probe_partition_table(tree.root() + "/missing.img");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("missing.img") != std::string::npos);
}

TEST_CASE("BlkidPartitionLookup finds the ESP through a --root tree's sysfs and /dev") {
  Tree tree;
  std::filesystem::create_directories(tree.root() + "/dev");
  make_disk_image(tree.root() + "/dev/vda");
  // The kernel's layout: the disk's directory holds its partitions, each with "partition".
  tree.write("sys/class/block/vda/dev", "253:0\n");
  tree.write("sys/class/block/vda/vda1/partition", "1\n");
  tree.write("sys/class/block/vda/vda2/partition", "2\n");
  tree.write("sys/class/block/vda/vda3/partition", "3\n");
  tree.write("sys/class/block/vda1/partition", "1\n");
  tree.write("sys/class/block/vda2/partition", "2\n");
  tree.write("sys/class/block/ram0/dev", "1:0\n");  // no device node: skipped, not an error

  BlkidPartitionLookup lookup(tree.root());
  auto typed = lookup.find_esp_typed();
  REQUIRE_MESSAGE(typed, typed.error().message);
  CHECK(*typed == std::vector<std::string>{tree.root() + "/dev/vda1"});
  auto xbootldr = lookup.find_typed(kXbootldrTypeGuid);
  REQUIRE(xbootldr);
  CHECK(*xbootldr == std::vector<std::string>{tree.root() + "/dev/vda3"});
  auto by_uuid = lookup.find_by_partuuid("5A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2D");
  REQUIRE(by_uuid);
  CHECK(*by_uuid == tree.root() + "/dev/vda1");
  CHECK_FALSE(lookup.find_by_partuuid("00000000-0000-0000-0000-000000000000")->has_value());

  auto choice = choose_esp("", std::string("5A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2D"), lookup);
  REQUIRE(choice);
  CHECK(choice->device == tree.root() + "/dev/vda1");
}

TEST_CASE("mounting a device that does not exist reports the device and errno") {
  Tree tree;
  auto mounted = EspMount::mount(tree.root() + "/dev/none", tree.root() + "/esp");
  REQUIRE_FALSE(mounted);
  CHECK(mounted.error().code == ErrorCode::Io);
  CHECK(mounted.error().message.find("/dev/none") != std::string::npos);
}

}  // namespace bootstate

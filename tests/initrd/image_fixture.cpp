// Why std::system here: these are test fixtures calling the real sfdisk/mkfs, the way an
// administrator would prepare a disk; the code under test never runs a shell.
#include "tests/initrd/image_fixture.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bootstate::test {
namespace {

std::string capture(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::size_t got = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    output.append(buffer.data(), got);
  }
  REQUIRE(::pclose(pipe) == 0);
  return output;
}

StorageOperation base(StorageOpKind kind, const std::string& disk) {
  StorageOperation op;
  op.op = kind;
  op.disk = disk;
  return op;
}

}  // namespace

ImageRoot::ImageRoot() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "bootstate-storage-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  root_ = pattern;
  std::filesystem::create_directories(root_ + "/dev");
  work_dir_ = root_ + "/work";
  std::filesystem::create_directories(work_dir_);
}

ImageRoot::~ImageRoot() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::string ImageRoot::host_path(const std::string& disk) const {
  return root_ + disk;
}

void ImageRoot::shell(const std::string& command) {
  INFO("command: " << command);
  REQUIRE(std::system(command.c_str()) == 0);
}

void ImageRoot::make_disk(const std::string& disk, const std::string& size,
                          const std::string& sfdisk_script) {
  std::string path = host_path(disk);
  shell("truncate -s " + size + " '" + path + "'");
  std::string script = root_ + "/sfdisk-script";
  std::ofstream(script) << sfdisk_script;
  shell("sfdisk -q --no-reread --no-tell-kernel '" + path + "' < '" + script + "' >/dev/null");
}

std::string ImageRoot::dump(const std::string& disk) const {
  return capture("sfdisk --dump '" + host_path(disk) + "'");
}

std::uint64_t ImageRoot::digest(const std::string& disk) const {
  std::ifstream in(host_path(disk), std::ios::binary);
  std::uint64_t hash = 14695981039346656037ull;
  std::array<char, 1 << 16> buffer{};
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash = (hash ^ static_cast<unsigned char>(buffer[static_cast<std::size_t>(i)])) *
             1099511628211ull;
    }
  }
  return hash;
}

StepFixture::StepFixture(const ImageRoot& root, std::vector<StorageOperation> operations) {
  step.id = "partitions";
  step.phase = Phase::InitrdPreMount;
  step.kind = StepKind::Storage;
  step.idempotent = true;
  step.storage = std::move(operations);
  migration.id = "storage-test";
  record.id = step.id;
  context.phase = Phase::InitrdPreMount;
  context.migration = &migration;
  context.step = &step;
  context.root = root.root();
  context.work_dir = root.work_dir();
  context.record = &record;
}

StorageOperation grow(const std::string& disk, const std::string& partition,
                      const std::string& size) {
  StorageOperation op = base(StorageOpKind::GrowPartition, disk);
  op.partition = partition;
  op.size = size;
  return op;
}

StorageOperation add(const std::string& disk, const std::string& name, const std::string& type,
                     const std::string& size, const std::string& uuid) {
  StorageOperation op = base(StorageOpKind::AddPartition, disk);
  op.name = name;
  op.type = type;
  op.size = size;
  op.uuid = uuid;
  return op;
}

StorageOperation set_name(const std::string& disk, const std::string& partition,
                          const std::string& name) {
  StorageOperation op = base(StorageOpKind::SetPartitionName, disk);
  op.partition = partition;
  op.name = name;
  return op;
}

StorageOperation set_type(const std::string& disk, const std::string& partition,
                          const std::string& type) {
  StorageOperation op = base(StorageOpKind::SetPartitionType, disk);
  op.partition = partition;
  op.type = type;
  return op;
}

StorageOperation set_attrs(const std::string& disk, const std::string& partition,
                           std::vector<std::string> attrs) {
  StorageOperation op = base(StorageOpKind::SetPartitionAttrs, disk);
  op.partition = partition;
  op.attrs = std::move(attrs);
  return op;
}

StorageOperation require(const std::string& device) {
  StorageOperation op;
  op.op = StorageOpKind::Require;
  op.device = device;
  return op;
}

}  // namespace bootstate::test

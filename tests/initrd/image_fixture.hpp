// Disk images for storage tests: a temp directory acting as the --root tree, sparse image
// files under it partitioned by sfdisk (an independent tool, so the tests do not check
// libfdisk with itself), and helpers to run a storage step against them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate::test {

class ImageRoot {
 public:
  ImageRoot();
  ~ImageRoot();
  ImageRoot(const ImageRoot&) = delete;
  ImageRoot& operator=(const ImageRoot&) = delete;

  const std::string& root() const { return root_; }
  // The work directory given to steps (a sub-directory of the tree).
  const std::string& work_dir() const { return work_dir_; }
  // Absolute path of `disk` ("/dev/vda") inside the tree.
  std::string host_path(const std::string& disk) const;

  // Creates `disk` as a sparse file of `size` ("64M") and partitions it with `sfdisk_script`.
  void make_disk(const std::string& disk, const std::string& size,
                 const std::string& sfdisk_script);
  // `sfdisk --dump` of the disk, for independent checks.
  std::string dump(const std::string& disk) const;
  // Digest of every byte of the disk: compared before/after a refusal.
  std::uint64_t digest(const std::string& disk) const;
  // Runs a shell command (tests only), failing the test when it exits non-zero.
  static void shell(const std::string& command);

 private:
  std::string root_;
  std::string work_dir_;
};

// A storage step of `operations` and a context pointing at `root` and its work directory.
struct StepFixture {
  Migration migration;
  Step step;
  StepRecord record;
  StepContext context;

  StepFixture(const ImageRoot& root, std::vector<StorageOperation> operations);
  StepFixture(const StepFixture&) = delete;
  StepFixture& operator=(const StepFixture&) = delete;
};

// Operation builders, as the plan parser would produce them.
StorageOperation grow(const std::string& disk, const std::string& partition,
                      const std::string& size);
StorageOperation add(const std::string& disk, const std::string& name, const std::string& type,
                     const std::string& size, const std::string& uuid = {});
StorageOperation set_name(const std::string& disk, const std::string& partition,
                          const std::string& name);
StorageOperation set_type(const std::string& disk, const std::string& partition,
                          const std::string& type);
StorageOperation set_attrs(const std::string& disk, const std::string& partition,
                           std::vector<std::string> attrs);
StorageOperation require(const std::string& device);

// A 64 MiB GPT disk: 1 "root" linux 16 MiB at 1 MiB, 2 "swap" 8 MiB after it, free tail.
inline constexpr const char* kGptScript =
    "label: gpt\n"
    "start=2048, size=16M, type=linux, name=root\n"
    "size=8M, type=swap, name=swap\n";
// The same layout on a dos table.
inline constexpr const char* kDosScript =
    "label: dos\n"
    "start=2048, size=16M, type=83\n"
    "size=8M, type=82\n";

}  // namespace bootstate::test

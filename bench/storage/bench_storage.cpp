// Validating and applying a 10-operation storage step on a 1 TiB sparse GPT image, against
// sfdisk making the same changes (one script for the whole table, and one sfdisk call per
// operation as a shell script would). Needs sfdisk (package fdisk). Prints milliseconds.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "initrd/storage_analysis.hpp"
#include "initrd/storage_step.hpp"

using namespace bootstate;

namespace {

constexpr int kRounds = 15;
constexpr const char* kBase =
    "label: gpt\n"
    "start=2048, size=512M, type=uefi, name=ESP\n"
    "size=20G, type=linux, name=root\n"
    "size=4G, type=swap, name=swap\n"
    "size=100G, type=linux, name=data\n";

void shell(const std::string& command) {
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n", command.c_str());
    std::exit(1);
  }
}

StorageOperation op(StorageOpKind kind, std::string partition = {}) {
  StorageOperation o;
  o.op = kind;
  o.disk = "/dev/vda";
  o.partition = std::move(partition);
  return o;
}

std::vector<StorageOperation> ten_operations() {
  std::vector<StorageOperation> ops;
  auto name = op(StorageOpKind::SetPartitionName, "1");
  name.name = "efi";
  ops.push_back(name);
  auto type = op(StorageOpKind::SetPartitionType, "PARTLABEL=root");
  type.type = "root";
  ops.push_back(type);
  auto attrs = op(StorageOpKind::SetPartitionAttrs, "PARTLABEL=root");
  attrs.attrs = {"grow-fs"};
  ops.push_back(attrs);
  auto grow = op(StorageOpKind::GrowPartition, "PARTLABEL=data");
  grow.size = "200G";
  ops.push_back(grow);
  auto swap_name = op(StorageOpKind::SetPartitionName, "3");
  swap_name.name = "swap0";
  ops.push_back(swap_name);
  auto swap_attrs = op(StorageOpKind::SetPartitionAttrs, "3");
  swap_attrs.attrs = {"no-auto"};
  ops.push_back(swap_attrs);
  for (auto [label, kind, size] : {std::tuple{"home", "home", "100G"},
                                   {"var", "var", "50G"},
                                   {"srv", "srv", "10G"},
                                   {"tmp", "tmp", "max"}}) {
    auto add = op(StorageOpKind::AddPartition);
    add.name = label;
    add.type = kind;
    add.size = size;
    ops.push_back(add);
  }
  return ops;
}

// The same changes as sfdisk commands, one per operation.
std::vector<std::string> sfdisk_commands(const std::string& image) {
  std::string s = "sfdisk -q --no-reread --no-tell-kernel ";
  std::string q = " '" + image + "'";
  return {
      s + "--part-label" + q + " 1 efi",
      s + "--part-type" + q + " 2 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
      s + "--part-attrs" + q + " 2 GUID:59",
      "echo ',200G' | " + s + "-N 4" + q + " >/dev/null",
      s + "--part-label" + q + " 3 swap0",
      s + "--part-attrs" + q + " 3 GUID:63",
      "echo 'size=100G, type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915, name=home' | " + s + "--append" +
          q + " >/dev/null",
      "echo 'size=50G, type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, name=var' | " + s + "--append" +
          q + " >/dev/null",
      "echo 'size=10G, type=3B8F8425-20E0-4F3B-907F-1A25A76F98E8, name=srv' | " + s + "--append" +
          q + " >/dev/null",
      "echo 'type=7EC6F557-3BC5-4ACA-B293-16EF5DF639D1, name=tmp' | " + s + "--append" + q +
          " >/dev/null",
  };
}

double median_ms(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

double time_ms(const std::function<void()>& work) {
  auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main() {
  std::string dir = (std::filesystem::temp_directory_path() / "bootstate-bench-XXXXXX").string();
  if (!::mkdtemp(dir.data())) return 1;
  std::filesystem::create_directories(dir + "/dev");
  std::filesystem::create_directories(dir + "/work");
  std::string image = dir + "/dev/vda";
  std::ofstream(dir + "/base.sfdisk") << kBase;
  auto fresh = [&] {
    shell("rm -f '" + image + "' '" + dir + "/work/storage-undo.json' && truncate -s 1T '" + image +
          "' && sfdisk -q --no-reread --no-tell-kernel '" + image + "' < '" + dir +
          "/base.sfdisk' >/dev/null");
  };

  Step step;
  step.id = "bench";
  step.phase = Phase::InitrdPreMount;
  step.kind = StepKind::Storage;
  step.storage = ten_operations();
  StepRecord record;
  StepContext context;
  context.step = &step;
  context.record = &record;
  context.root = dir;
  context.work_dir = dir + "/work";
  StorageStepExecutor executor;

  std::vector<double> validate, apply, rerun, script, per_op;
  for (int round = 0; round < kRounds; ++round) {
    fresh();
    validate.push_back(time_ms([&] {
      if (!analyse_storage_step(step.storage, dir)) std::exit(2);
    }));
    apply.push_back(time_ms([&] {
      StepOutcome outcome = executor.run(context);
      if (!outcome.ok) {
        std::fprintf(stderr, "run failed: %s\n", outcome.message.c_str());
        std::exit(3);
      }
    }));
    rerun.push_back(time_ms([&] {
      if (!executor.run(context).ok) std::exit(4);
    }));
    if (round == 0) shell("sfdisk --dump '" + image + "' > '" + dir + "/target.sfdisk'");
    fresh();
    script.push_back(time_ms([&] {
      shell("sfdisk -q --no-reread --no-tell-kernel '" + image + "' < '" + dir +
            "/target.sfdisk' >/dev/null");
    }));
    fresh();
    per_op.push_back(time_ms([&] {
      for (const std::string& command : sfdisk_commands(image)) shell(command);
    }));
  }
  std::filesystem::remove_all(dir);
  double v = median_ms(validate), a = median_ms(apply), r = median_ms(rerun);
  double s = median_ms(script), p = median_ms(per_op);
  std::printf("storage step, 10 operations, 1 TiB sparse GPT image, median of %d rounds\n",
              kRounds);
  std::printf("  validate (read + plan + probe claimed space): %8.2f ms\n", v);
  std::printf("  run (validate + journal + write + verify):    %8.2f ms\n", a);
  std::printf("  re-run, everything in effect:                 %8.2f ms\n", r);
  std::printf("  sfdisk, whole target table from one script:   %8.2f ms\n", s);
  std::printf("  sfdisk, one call per operation (10 calls):    %8.2f ms\n", p);
  std::printf("  ratio run / sfdisk script:                    %8.2f\n", a / s);
  std::printf("  ratio run / sfdisk per operation:             %8.2f\n", a / p);
  return 0;
}

// The read-only part of a storage step. Signatures are probed only in space a partition is
// about to gain: a grown partition's tail and a new partition's extent. Space a partition
// already has is the owner's business (resize2fs will grow into it).
#include "initrd/storage_analysis.hpp"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "core/directory.hpp"
#include "initrd/blkid_probe.hpp"
#include "initrd/fdisk_table.hpp"
#include "initrd/storage_names.hpp"

namespace bootstate {
namespace {

struct Located {
  std::string path;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;  // 0: the whole device
};

// Finds a tagged device among the partitions of the step's disks.
Expected<std::optional<Located>> find_tagged(std::string_view tag, std::string_view value,
                                             const std::vector<DiskWork>& disks) {
  for (const DiskWork& disk : disks) {
    const TableModel& table = disk.plan.before;
    for (const PartitionModel& partition : table.partitions) {
      Located located{disk.path, partition.start * table.sector_size,
                      partition.size * table.sector_size};
      if (tag == "PARTLABEL" && table.label == LabelKind::Gpt && partition.name == value) {
        return std::optional(located);
      }
      if (tag == "PARTUUID" && upper_ascii(partition.uuid) == upper_ascii(value)) {
        return std::optional(located);
      }
      if ((tag == "LABEL" || tag == "UUID") && !partition.container) {
        auto probe = probe_region(disk.path, located.offset, located.size);
        if (!probe) return probe.error();
        if ((tag == "LABEL" && probe->label == value) ||
            (tag == "UUID" && upper_ascii(probe->uuid) == upper_ascii(value))) {
          return std::optional(located);
        }
      }
    }
  }
  return std::optional<Located>();
}

Expected<Located> locate_device(const StorageOperation& op, std::string_view root,
                                const std::vector<DiskWork>& disks) {
  const std::string& device = op.device;
  if (!device.empty() && device[0] == '/') return Located{reroot(root, device), 0, 0};
  auto equals = device.find('=');
  if (equals == std::string::npos) {
    return make_error(ErrorCode::InvalidInput, "\"{}\" is neither a path nor a tag", device);
  }
  std::string tag = device.substr(0, equals);
  std::string value = device.substr(equals + 1);
  auto found = find_tagged(tag, value, disks);
  if (!found) return found.error();
  if (*found) return **found;
  if (root.empty() || root == "/") {
    auto path = evaluate_system_tag(tag, value);
    if (!path) return path.error();
    if (*path) return Located{**path, 0, 0};
  } else {
    // Under --root there is no udev or blkid cache: look at the tables of ROOT/dev/*.
    std::vector<DiskWork> others;
    const std::string dev = reroot(root, "/dev");
    auto names = list_directory(dev);
    if (names) std::sort(names->begin(), names->end());  // the first match wins: be repeatable
    for (const auto& name : names ? *names : std::vector<std::string>()) {
      const std::string path = dev + "/" + name;
      struct stat status {};
      if (::stat(path.c_str(), &status) != 0) continue;
      if (!S_ISREG(status.st_mode) && !S_ISBLK(status.st_mode)) continue;
      auto table = read_table(path, path);
      if (table) others.push_back(DiskWork{path, DiskPlan{*table, *table, {}}});
    }
    auto other = find_tagged(tag, value, others);
    if (!other) return other.error();
    if (*other) return **other;
  }
  return make_error(ErrorCode::NotFound, "no device matches {}", device);
}

Error require_failed(const StorageOperation& op, std::size_t index, std::string_view field,
                     std::string_view found, std::string_view expected) {
  return make_error(ErrorCode::Failed, "operations[{}] (require {}): {} is {}, expected {}", index,
                    op.device, field, found, expected);
}

std::string quoted_or_none(const std::string& text) {
  return text.empty() ? std::string("(none)") : fmt::format("\"{}\"", text);
}

Expected<void> check_claimed_space(const DiskWork& disk) {
  const TableModel& table = disk.plan.before;
  for (const PlannedOp& op : disk.plan.ops) {
    if (!op.change || op.claimed_size == 0 || op.allow_destroy) continue;
    auto probe = probe_region(disk.path, op.claimed_start * table.sector_size,
                              op.claimed_size * table.sector_size);
    if (!probe) return probe.error();
    if (probe->found()) {
      return make_error(ErrorCode::Failed,
                        "operations[{}] ({}): sectors {}-{} of {} hold a {} signature{}; refusing "
                        "to hand them to a partition without allow-destroy",
                        op.index, op.summary, op.claimed_start,
                        op.claimed_start + op.claimed_size - 1, table.disk, probe->type,
                        probe->label.empty() ? "" : fmt::format(" (label \"{}\")", probe->label));
    }
  }
  return {};
}

}  // namespace

std::string reroot(std::string_view root, std::string_view path) {
  if (root.empty() || root == "/") return std::string(path);
  std::string base(root);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + std::string(path);
}

bool StepAnalysis::changes() const {
  return std::any_of(disks.begin(), disks.end(),
                     [](const DiskWork& disk) { return disk.plan.changes(); });
}

Expected<StepAnalysis> analyse_storage_step(const std::vector<StorageOperation>& operations,
                                            std::string_view root, AnalysisOptions options) {
  std::vector<std::string> order;  // disks, as first named
  for (const StorageOperation& op : operations) {
    if (op.op == StorageOpKind::Require) continue;
    if (std::find(order.begin(), order.end(), op.disk) == order.end()) order.push_back(op.disk);
  }
  StepAnalysis analysis;
  for (const std::string& disk : order) {
    std::string path = reroot(root, disk);
    auto table = read_table(path, disk);
    if (!table) return table.error();
    std::vector<const StorageOperation*> ops;
    std::vector<std::size_t> indices;
    for (std::size_t i = 0; i < operations.size(); ++i) {
      if (operations[i].op != StorageOpKind::Require && operations[i].disk == disk) {
        ops.push_back(&operations[i]);
        indices.push_back(i);
      }
    }
    auto plan = plan_disk(*table, ops, indices);
    if (!plan) return plan.error();
    analysis.disks.push_back(DiskWork{path, std::move(*plan)});
  }
  if (!options.preconditions) return analysis;
  for (std::size_t i = 0; i < operations.size(); ++i) {
    if (operations[i].op != StorageOpKind::Require) continue;
    auto line = check_requirement(operations[i], i, root, analysis.disks);
    if (!line) return line.error();
    analysis.requirements.push_back(std::move(*line));
  }
  for (const DiskWork& disk : analysis.disks) BOOTSTATE_TRY(check_claimed_space(disk));
  return analysis;
}

Expected<std::string> check_requirement(const StorageOperation& op, std::size_t index,
                                        std::string_view root, const std::vector<DiskWork>& disks) {
  auto located = locate_device(op, root, disks);
  if (!located) {
    return make_error(located.error().code, "operations[{}] (require {}): {}", index, op.device,
                      located.error().message);
  }
  auto probe = probe_region(located->path, located->offset, located->size);
  if (!probe) {
    return make_error(probe.error().code, "operations[{}] (require {}): {}", index, op.device,
                      probe.error().message);
  }
  if (!op.fstype.empty() && probe->type != op.fstype) {
    return require_failed(op, index, "fstype", quoted_or_none(probe->type),
                          fmt::format("\"{}\"", op.fstype));
  }
  if (!op.label.empty() && probe->label != op.label) {
    return require_failed(op, index, "label", quoted_or_none(probe->label),
                          fmt::format("\"{}\"", op.label));
  }
  if (!op.uuid.empty() && upper_ascii(probe->uuid) != upper_ascii(op.uuid)) {
    return require_failed(op, index, "uuid", quoted_or_none(probe->uuid),
                          fmt::format("\"{}\"", op.uuid));
  }
  if (!op.min_size.empty()) {
    auto minimum = parse_size(op.min_size);
    if (!minimum || !*minimum) {
      return make_error(ErrorCode::InvalidInput,
                        "operations[{}] (require {}): min-size \"{}\" "
                        "is not a size",
                        index, op.device, op.min_size);
    }
    if (probe->size < **minimum) {
      return require_failed(op, index, "size", format_size(probe->size),
                            fmt::format("at least {}", format_size(**minimum)));
    }
  }
  return fmt::format("{} is {}{}, {}", op.device, probe->found() ? probe->type : "unformatted",
                     probe->label.empty() ? "" : fmt::format(" \"{}\"", probe->label),
                     format_size(probe->size));
}

std::string random_partition_uuid() {
  std::array<unsigned char, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    ssize_t got = getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got > 0) filled += static_cast<std::size_t>(got);
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string text;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02X}", bytes[i]);
  }
  return text;
}

}  // namespace bootstate

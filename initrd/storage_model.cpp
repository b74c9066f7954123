// Planning operations against a table model. Each operation is checked against the table as
// the operations before it left it, and "already in effect" is decided per operation, which is
// what makes a re-run after a power cut a no-op instead of a second grow or a second add.
#include "initrd/storage_model.hpp"

#include <algorithm>

#include "initrd/storage_names.hpp"

namespace bootstate {
namespace {

std::string partition_words(const PartitionModel& partition) {
  if (partition.name.empty()) return fmt::format("partition {}", partition.number);
  return fmt::format("partition {} ({})", partition.number, partition.name);
}

std::string type_words(const TableModel& table, const std::string& type) {
  if (table.label == LabelKind::Dos) return fmt::format("0x{}", type);
  if (auto name = type_short_name(type)) return std::string(*name);
  return type;
}

std::uint64_t bytes_to_sectors(const TableModel& table, std::uint64_t bytes) {
  return (bytes + table.sector_size - 1) / table.sector_size;
}

std::uint64_t align_up(std::uint64_t lba, std::uint64_t grain) {
  if (grain <= 1) return lba;
  return (lba + grain - 1) / grain * grain;
}

// The last sector `partition` may grow to: up to the next partition or the end of the table.
std::uint64_t grow_limit(const TableModel& table, const PartitionModel& partition) {
  std::uint64_t limit = table.last_lba;
  for (const PartitionModel& other : table.partitions) {
    if (other.number != partition.number && other.start > partition.start) {
      limit = std::min(limit, other.start - 1);
    }
  }
  return limit;
}

Error op_error(const StorageOperation& op, std::size_t index, const std::string& message) {
  return make_error(ErrorCode::InvalidInput, "operations[{}] ({} on {}): {}", index,
                    to_string(op.op), op.disk, message);
}

Expected<std::string> target_type(const TableModel& table, const std::string& text) {
  if (table.label == LabelKind::Gpt) return resolve_type(text);
  auto code = resolve_dos_type(text);
  if (!code) return code.error();
  return fmt::format("{:02x}", *code);
}

Expected<PlannedOp> plan_grow(TableModel& table, PartitionModel& partition,
                              const StorageOperation& op) {
  if (partition.container || (table.label == LabelKind::Dos && partition.number > 4)) {
    return make_error(ErrorCode::Unsupported,
                      "{} is an extended or logical dos partition; only primary partitions grow",
                      partition_words(partition));
  }
  auto size = parse_size(op.size);
  if (!size) return size.error();
  std::uint64_t limit = grow_limit(table, partition);
  std::uint64_t target = *size ? bytes_to_sectors(table, **size) : limit - partition.start + 1;
  PlannedOp planned;
  planned.number = partition.number;
  if (target < partition.size) {
    return make_error(ErrorCode::InvalidInput,
                      "{} is {}; growing it to {} would shrink it (shrinking is refused)",
                      partition_words(partition), format_size(partition.size * table.sector_size),
                      format_size(target * table.sector_size));
  }
  if (partition.start + target - 1 > limit) {
    bool at_end = limit == table.last_lba;
    return make_error(
        ErrorCode::InvalidInput, "{} cannot grow to {}: {} ends at sector {} ({})",
        partition_words(partition), format_size(target * table.sector_size),
        at_end ? "the usable space of the disk" : "the space before the next partition", limit,
        fmt::format("at most {}", format_size((limit - partition.start + 1) * table.sector_size)));
  }
  if (target == partition.size) {
    planned.summary = fmt::format("{} is already {}", partition_words(partition),
                                  format_size(target * table.sector_size));
    return planned;
  }
  planned.change = true;
  planned.summary = fmt::format("grow {} from {} to {}", partition_words(partition),
                                format_size(partition.size * table.sector_size),
                                format_size(target * table.sector_size));
  planned.claimed_start = partition.end() + 1;
  planned.claimed_size = target - partition.size;
  partition.size = target;
  return planned;
}

Expected<PlannedOp> plan_add(TableModel& table, const StorageOperation& op) {
  if (table.label != LabelKind::Gpt) {
    return make_error(ErrorCode::Unsupported,
                      "a dos table cannot name a partition, so an added partition could not be "
                      "recognised when the step runs again; add-partition needs GPT");
  }
  auto type = resolve_type(op.type);
  if (!type) return type.error();
  std::string uuid = upper_ascii(op.uuid);
  std::vector<const PartitionModel*> named;
  for (const PartitionModel& partition : table.partitions) {
    if (partition.name == op.name) named.push_back(&partition);
    if (!uuid.empty() && partition.uuid == uuid && partition.name != op.name) {
      return make_error(ErrorCode::InvalidInput, "PARTUUID {} is already used by {}", uuid,
                        partition_words(partition));
    }
  }
  PlannedOp planned;
  if (named.size() > 1) {
    return make_error(ErrorCode::InvalidInput, "{} partitions are named \"{}\"", named.size(),
                      op.name);
  }
  if (named.size() == 1) {
    const PartitionModel& existing = *named.front();
    if (existing.type != *type || (!uuid.empty() && existing.uuid != uuid)) {
      return make_error(ErrorCode::InvalidInput,
                        "{} exists with type {} and PARTUUID {}, not the ones asked for",
                        partition_words(existing), type_words(table, existing.type), existing.uuid);
    }
    planned.number = existing.number;
    planned.summary = fmt::format("{} already exists", partition_words(existing));
    return planned;
  }
  auto size = parse_size(op.size);
  if (!size) return size.error();
  std::optional<std::uint64_t> wanted;
  if (*size) wanted = bytes_to_sectors(table, **size);
  // Fixed sizes take the first region that fits; "max" takes the largest region.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> chosen;
  std::uint64_t largest = 0;
  for (auto [start, count] : free_regions(table)) {
    std::uint64_t aligned = align_up(start, table.grain);
    if (aligned > start + count - 1) continue;
    std::uint64_t usable = start + count - aligned;
    largest = std::max(largest, usable);
    if (wanted && usable >= *wanted && !chosen) chosen = std::pair{aligned, *wanted};
    if (!wanted && (!chosen || usable > chosen->second)) chosen = std::pair{aligned, usable};
  }
  if (!chosen) {
    return make_error(ErrorCode::InvalidInput,
                      "no free region holds {} (the largest free region is {})",
                      wanted ? format_size(*wanted * table.sector_size) : std::string("it"),
                      format_size(largest * table.sector_size));
  }
  PartitionModel added;
  for (std::size_t number = 1; number <= table.max_partitions; ++number) {
    if (!table.find(number)) {
      added.number = number;
      break;
    }
  }
  if (added.number == 0) return make_error(ErrorCode::InvalidInput, "the partition table is full");
  added.start = chosen->first;
  added.size = chosen->second;
  added.name = op.name;
  added.type = *type;
  added.uuid = uuid;  // empty: the executor picks one before writing
  planned.change = true;
  planned.number = added.number;
  planned.claimed_start = added.start;
  planned.claimed_size = added.size;
  planned.summary = fmt::format("add partition {} ({}), {} {} at sector {}", added.number, op.name,
                                type_words(table, added.type),
                                format_size(added.size * table.sector_size), added.start);
  table.partitions.push_back(added);
  std::sort(table.partitions.begin(), table.partitions.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  return planned;
}

// set-partition-name/-type/-attrs share one shape: compare, then assign.
template <typename Value>
PlannedOp plan_set(const PartitionModel& partition, Value& field, const Value& target,
                   std::string_view what, const std::string& old_words,
                   const std::string& new_words) {
  PlannedOp planned;
  planned.number = partition.number;
  if (field == target) {
    planned.summary =
        fmt::format("{} {} is already {}", partition_words(partition), what, new_words);
    return planned;
  }
  planned.change = true;
  planned.summary = fmt::format("set {} {} from {} to {}", partition_words(partition), what,
                                old_words, new_words);
  field = target;
  return planned;
}

Expected<PlannedOp> plan_one(TableModel& table, const StorageOperation& op) {
  if (op.op == StorageOpKind::AddPartition) return plan_add(table, op);
  bool gpt_only =
      op.op == StorageOpKind::SetPartitionName || op.op == StorageOpKind::SetPartitionAttrs;
  if (gpt_only && table.label != LabelKind::Gpt) {
    return make_error(ErrorCode::Unsupported, "dos partition tables have no partition {}",
                      op.op == StorageOpKind::SetPartitionName ? "names" : "attribute bits");
  }
  auto number = resolve_partition(table, op.partition);
  // A rename that already happened leaves no partition with the old name: the one with the
  // new name is taken to be it, which is what makes the rename idempotent.
  if (!number && op.op == StorageOpKind::SetPartitionName &&
      op.partition.rfind("PARTLABEL=", 0) == 0) {
    if (auto renamed = resolve_partition(table, "PARTLABEL=" + op.name)) number = renamed;
  }
  if (!number) return number.error();
  PartitionModel& partition = *table.find(*number);
  switch (op.op) {
    case StorageOpKind::GrowPartition:
      return plan_grow(table, partition, op);
    case StorageOpKind::SetPartitionName: {
      if (op.name.size() > 36) {
        return make_error(ErrorCode::InvalidInput, "name \"{}\" is longer than GPT's 36 characters",
                          op.name);
      }
      return plan_set(partition, partition.name, op.name, "name",
                      fmt::format("\"{}\"", partition.name), fmt::format("\"{}\"", op.name));
    }
    case StorageOpKind::SetPartitionType: {
      if (partition.container) {
        return make_error(ErrorCode::Unsupported, "{} is an extended partition",
                          partition_words(partition));
      }
      auto type = target_type(table, op.type);
      if (!type) return type.error();
      return plan_set(partition, partition.type, *type, "type", type_words(table, partition.type),
                      type_words(table, *type));
    }
    case StorageOpKind::SetPartitionAttrs: {
      auto attrs = parse_gpt_attrs(op.attrs);
      if (!attrs) return attrs.error();
      return plan_set(partition, partition.attrs, *attrs, "attributes",
                      format_gpt_attrs(partition.attrs), format_gpt_attrs(*attrs));
    }
    default:
      return make_error(ErrorCode::InvalidInput, "not a partition table operation");
  }
}

}  // namespace

std::string_view to_string(LabelKind label) {
  return label == LabelKind::Gpt ? "gpt" : "dos";
}

const PartitionModel* TableModel::find(std::size_t number) const {
  for (const PartitionModel& partition : partitions) {
    if (partition.number == number) return &partition;
  }
  return nullptr;
}

PartitionModel* TableModel::find(std::size_t number) {
  return const_cast<PartitionModel*>(std::as_const(*this).find(number));
}

bool DiskPlan::changes() const {
  return std::any_of(ops.begin(), ops.end(), [](const PlannedOp& op) { return op.change; });
}

Expected<std::size_t> resolve_partition(const TableModel& table, std::string_view reference) {
  std::vector<std::size_t> matches;
  std::string_view kind;
  if (reference.rfind("PARTLABEL=", 0) == 0) {
    kind = "PARTLABEL";
    std::string_view name = reference.substr(10);
    for (const PartitionModel& partition : table.partitions) {
      if (table.label == LabelKind::Gpt && partition.name == name)
        matches.push_back(partition.number);
    }
  } else if (reference.rfind("PARTUUID=", 0) == 0) {
    kind = "PARTUUID";
    std::string uuid = upper_ascii(reference.substr(9));
    for (const PartitionModel& partition : table.partitions) {
      if (upper_ascii(partition.uuid) == uuid) matches.push_back(partition.number);
    }
  } else {
    kind = "number";
    std::size_t number = 0;
    for (char c : reference) {
      if (c < '0' || c > '9' || number > 100000) {
        return make_error(ErrorCode::InvalidInput, "\"{}\" is not a partition reference",
                          reference);
      }
      number = number * 10 + static_cast<std::size_t>(c - '0');
    }
    if (!reference.empty() && table.find(number)) matches.push_back(number);
  }
  if (matches.empty()) {
    return make_error(ErrorCode::NotFound, "no partition matches {} ({}) on {}", reference, kind,
                      table.disk);
  }
  if (matches.size() > 1) {
    return make_error(ErrorCode::InvalidInput, "{} is ambiguous on {}: partitions {} and {} match",
                      reference, table.disk, matches[0], matches[1]);
  }
  return matches.front();
}

Expected<DiskPlan> plan_disk(const TableModel& table,
                             const std::vector<const StorageOperation*>& ops,
                             const std::vector<std::size_t>& indices) {
  DiskPlan plan;
  plan.before = table;
  plan.after = table;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const StorageOperation& op = *ops[i];
    auto planned = plan_one(plan.after, op);
    if (!planned) {
      Error error = op_error(op, indices[i], planned.error().message);
      error.code = planned.error().code;
      return error;
    }
    planned->index = indices[i];
    planned->kind = op.op;
    planned->allow_destroy = op.allow_destroy;
    plan.ops.push_back(std::move(*planned));
  }
  return plan;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> free_regions(const TableModel& table) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> used;
  for (const PartitionModel& partition : table.partitions) {
    // Logical dos partitions lie inside their container, which already covers them.
    if (table.label == LabelKind::Dos && partition.number > 4) continue;
    used.emplace_back(partition.start, partition.end());
  }
  std::sort(used.begin(), used.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> regions;
  std::uint64_t next = table.first_lba;
  for (auto [start, end] : used) {
    if (start > next) regions.emplace_back(next, start - next);
    next = std::max(next, end + 1);
  }
  if (next <= table.last_lba) regions.emplace_back(next, table.last_lba - next + 1);
  return regions;
}

std::vector<std::string> describe_table(const TableModel& table) {
  std::vector<std::string> lines;
  for (const PartitionModel& partition : table.partitions) {
    std::string line = fmt::format("  {:>3} {:<16} {:<10} start {:>12} size {}", partition.number,
                                   partition.name.empty() ? "-" : partition.name,
                                   type_words(table, partition.type), partition.start,
                                   format_size(partition.size * table.sector_size));
    if (partition.attrs != 0) line += fmt::format(" attrs {}", format_gpt_attrs(partition.attrs));
    lines.push_back(std::move(line));
  }
  if (lines.empty()) lines.emplace_back("  (no partitions)");
  return lines;
}

}  // namespace bootstate

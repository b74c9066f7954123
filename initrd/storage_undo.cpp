// Undo records: computed from the before/after tables rather than from the operations, so
// that whatever the write changed is exactly what revert restores.
#include "initrd/storage_undo.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "initrd/storage_names.hpp"

namespace bootstate {
namespace {

bool same_partition(const std::string& uuid_a, std::size_t number_a, const std::string& uuid_b,
                    std::size_t number_b) {
  if (!uuid_a.empty() && !uuid_b.empty()) return upper_ascii(uuid_a) == upper_ascii(uuid_b);
  return number_a == number_b;
}

const PartitionModel* find_partition(const TableModel& table, const std::string& uuid,
                                     std::size_t number) {
  for (const PartitionModel& partition : table.partitions) {
    if (table.label == LabelKind::Gpt && !uuid.empty()) {
      if (upper_ascii(partition.uuid) == upper_ascii(uuid)) return &partition;
    } else if (partition.number == number) {
      return &partition;
    }
  }
  return nullptr;
}

std::string get_string(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsString()) return {};
  return member->value.GetString();
}

std::optional<std::string> get_optional_string(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsString()) return std::nullopt;
  return std::string(member->value.GetString());
}

std::optional<std::uint64_t> get_optional_u64(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  if (member == object.MemberEnd()) return std::nullopt;
  if (member->value.IsUint64()) return member->value.GetUint64();
  if (member->value.IsString()) {  // attrs are written as hex text: JSON numbers lose bit 63
    return std::stoull(member->value.GetString(), nullptr, 0);
  }
  return std::nullopt;
}

}  // namespace

bool UndoRecord::empty() const {
  return std::all_of(disks.begin(), disks.end(), [](const UndoDisk& disk) {
    return disk.added.empty() && disk.changed.empty();
  });
}

bool UndoRecord::has_grow() const {
  for (const UndoDisk& disk : disks) {
    for (const UndoChanged& changed : disk.changed) {
      if (changed.grown_from) return true;
    }
  }
  return false;
}

UndoDisk& UndoRecord::disk(const std::string& path, LabelKind label) {
  for (UndoDisk& disk : disks) {
    if (disk.disk == path) return disk;
  }
  disks.push_back(UndoDisk{path, label, {}, {}});
  return disks.back();
}

UndoDisk undo_for_plan(const DiskPlan& plan) {
  UndoDisk undo{plan.before.disk, plan.before.label, {}, {}};
  for (const PartitionModel& now : plan.after.partitions) {
    const PartitionModel* old = plan.before.find(now.number);
    if (!old) {
      undo.added.push_back(UndoAdded{now.number, now.uuid, now.name});
      continue;
    }
    if (*old == now) continue;
    UndoChanged changed;
    changed.number = now.number;
    changed.uuid = plan.before.label == LabelKind::Gpt ? old->uuid : std::string();
    if (old->name != now.name) changed.name = old->name;
    if (old->type != now.type) changed.type = old->type;
    if (old->attrs != now.attrs) changed.attrs = old->attrs;
    if (old->size != now.size) changed.grown_from = old->size;
    undo.changed.push_back(std::move(changed));
  }
  for (const PlannedOp& op : plan.ops) {
    const PartitionModel* existing = plan.before.find(op.number);
    if (op.kind != StorageOpKind::AddPartition || op.change || !existing) continue;
    undo.added.push_back(UndoAdded{existing->number, existing->uuid, existing->name});
  }
  return undo;
}

void merge_undo(UndoRecord& record, const UndoRecord& newer) {
  for (const UndoDisk& incoming : newer.disks) {
    UndoDisk& target = record.disk(incoming.disk, incoming.label);
    for (const UndoAdded& added : incoming.added) {
      bool known = std::any_of(target.added.begin(), target.added.end(), [&](const UndoAdded& a) {
        return same_partition(a.uuid, a.number, added.uuid, added.number);
      });
      if (!known) target.added.push_back(added);
    }
    for (const UndoChanged& changed : incoming.changed) {
      auto existing =
          std::find_if(target.changed.begin(), target.changed.end(), [&](const UndoChanged& c) {
            return same_partition(c.uuid, c.number, changed.uuid, changed.number);
          });
      if (existing == target.changed.end()) {
        target.changed.push_back(changed);
        continue;
      }
      if (!existing->name) existing->name = changed.name;
      if (!existing->type) existing->type = changed.type;
      if (!existing->attrs) existing->attrs = changed.attrs;
      if (!existing->grown_from) existing->grown_from = changed.grown_from;
    }
  }
}

std::string encode_undo(const UndoRecord& record) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
  out.StartObject();
  out.Key("version");
  out.Uint(1);
  out.Key("disks");
  out.StartArray();
  for (const UndoDisk& disk : record.disks) {
    out.StartObject();
    out.Key("disk");
    out.String(disk.disk.c_str());
    out.Key("label");
    out.String(std::string(to_string(disk.label)).c_str());
    out.Key("added");
    out.StartArray();
    for (const UndoAdded& added : disk.added) {
      out.StartObject();
      out.Key("number");
      out.Uint64(added.number);
      out.Key("uuid");
      out.String(added.uuid.c_str());
      out.Key("name");
      out.String(added.name.c_str());
      out.EndObject();
    }
    out.EndArray();
    out.Key("changed");
    out.StartArray();
    for (const UndoChanged& changed : disk.changed) {
      out.StartObject();
      out.Key("number");
      out.Uint64(changed.number);
      out.Key("uuid");
      out.String(changed.uuid.c_str());
      if (changed.name) {
        out.Key("name");
        out.String(changed.name->c_str());
      }
      if (changed.type) {
        out.Key("type");
        out.String(changed.type->c_str());
      }
      if (changed.attrs) {
        out.Key("attrs");
        out.String(fmt::format("{:#x}", *changed.attrs).c_str());
      }
      if (changed.grown_from) {
        out.Key("grown_from");
        out.Uint64(*changed.grown_from);
      }
      out.EndObject();
    }
    out.EndArray();
    out.EndObject();
  }
  out.EndArray();
  out.EndObject();
  return buffer.GetString();
}

Expected<UndoRecord> decode_undo(std::string_view text) {
  UndoRecord record;
  if (text.empty()) return record;
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  if (document.HasParseError() || !document.IsObject()) {
    return make_error(ErrorCode::Corrupt, "storage undo record is not a JSON object");
  }
  auto disks = document.FindMember("disks");
  if (disks == document.MemberEnd() || !disks->value.IsArray()) return record;
  for (const rapidjson::Value& item : disks->value.GetArray()) {
    if (!item.IsObject()) return make_error(ErrorCode::Corrupt, "storage undo record: bad disk");
    UndoDisk disk;
    disk.disk = get_string(item, "disk");
    disk.label = get_string(item, "label") == "dos" ? LabelKind::Dos : LabelKind::Gpt;
    if (auto added = item.FindMember("added");
        added != item.MemberEnd() && added->value.IsArray()) {
      for (const rapidjson::Value& entry : added->value.GetArray()) {
        if (!entry.IsObject()) continue;
        disk.added.push_back(UndoAdded{get_optional_u64(entry, "number").value_or(0),
                                       get_string(entry, "uuid"), get_string(entry, "name")});
      }
    }
    if (auto changed = item.FindMember("changed");
        changed != item.MemberEnd() && changed->value.IsArray()) {
      for (const rapidjson::Value& entry : changed->value.GetArray()) {
        if (!entry.IsObject()) continue;
        UndoChanged change;
        change.number = get_optional_u64(entry, "number").value_or(0);
        change.uuid = get_string(entry, "uuid");
        change.name = get_optional_string(entry, "name");
        change.type = get_optional_string(entry, "type");
        change.attrs = get_optional_u64(entry, "attrs");
        change.grown_from = get_optional_u64(entry, "grown_from");
        disk.changed.push_back(std::move(change));
      }
    }
    record.disks.push_back(std::move(disk));
  }
  return record;
}

Expected<RevertPlan> plan_revert(const TableModel& table, const UndoDisk& undo) {
  RevertPlan plan;
  plan.after = table;
  for (const UndoChanged& changed : undo.changed) {
    const PartitionModel* found = find_partition(table, changed.uuid, changed.number);
    if (!found) {
      return make_error(ErrorCode::NotFound, "{}: partition {} ({}) to restore is gone", undo.disk,
                        changed.number, changed.uuid.empty() ? "by number" : changed.uuid);
    }
    PartitionModel& partition = *plan.after.find(found->number);
    PartitionModel original = partition;
    if (changed.name) partition.name = *changed.name;
    if (changed.type) partition.type = *changed.type;
    if (changed.attrs) partition.attrs = *changed.attrs;
    if (!(original == partition)) {
      plan.changes = true;
      plan.lines.push_back(fmt::format("restore partition {} on {}", partition.number, undo.disk));
    }
  }
  for (const UndoAdded& added : undo.added) {
    const PartitionModel* found = find_partition(table, added.uuid, added.number);
    if (!found) continue;  // deleted by an earlier, interrupted revert
    plan.deleted.push_back(*found);
    plan.changes = true;
    plan.lines.push_back(
        fmt::format("delete partition {} ({}) on {}", found->number, found->name, undo.disk));
    auto& partitions = plan.after.partitions;
    partitions.erase(
        std::remove_if(partitions.begin(), partitions.end(),
                       [&](const PartitionModel& p) { return p.number == found->number; }),
        partitions.end());
  }
  return plan;
}

}  // namespace bootstate

// describe() of storage steps: the same analysis run() does, shown instead of written. The
// lines are for `bootstate preview`; detail_json carries the same tables for `--json`.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "initrd/storage_analysis.hpp"
#include "initrd/storage_names.hpp"
#include "initrd/storage_step.hpp"

namespace bootstate {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(JsonWriter& out, const char* key, const std::string& value) {
  out.Key(key);
  out.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_table(JsonWriter& out, const char* key, const TableModel& table) {
  out.Key(key);
  out.StartArray();
  for (const PartitionModel& partition : table.partitions) {
    out.StartObject();
    out.Key("number");
    out.Uint64(partition.number);
    write_string(out, "name", partition.name);
    write_string(out, "type", partition.type);
    write_string(out, "uuid", partition.uuid);
    out.Key("start");
    out.Uint64(partition.start);
    out.Key("size");
    out.Uint64(partition.size);
    out.Key("size_bytes");
    out.Uint64(partition.size * table.sector_size);
    write_string(out, "attrs", format_gpt_attrs(partition.attrs));
    out.EndObject();
  }
  out.EndArray();
}

std::string detail_json(const StepAnalysis& analysis) {
  rapidjson::StringBuffer buffer;
  JsonWriter out(buffer);
  out.StartObject();
  out.Key("disks");
  out.StartArray();
  for (const DiskWork& disk : analysis.disks) {
    out.StartObject();
    write_string(out, "disk", disk.plan.before.disk);
    write_string(out, "label", std::string(to_string(disk.plan.before.label)));
    out.Key("sector_size");
    out.Uint64(disk.plan.before.sector_size);
    write_table(out, "before", disk.plan.before);
    write_table(out, "after", disk.plan.after);
    out.Key("operations");
    out.StartArray();
    for (const PlannedOp& op : disk.plan.ops) {
      out.StartObject();
      out.Key("index");
      out.Uint64(op.index);
      write_string(out, "op", std::string(to_string(op.kind)));
      out.Key("change");
      out.Bool(op.change);
      write_string(out, "summary", op.summary);
      out.EndObject();
    }
    out.EndArray();
    out.EndObject();
  }
  out.EndArray();
  out.Key("requirements");
  out.StartArray();
  for (const std::string& line : analysis.requirements) out.String(line.c_str());
  out.EndArray();
  out.EndObject();
  return buffer.GetString();
}

}  // namespace

StepPreview StorageStepExecutor::describe(const StepContext& context) {
  StepPreview preview;
  if (!context.step || context.step->kind != StepKind::Storage) {
    preview.blocker = "storage executor called without a storage step";
    return preview;
  }
  preview.irreversible = !storage_step_revertible(*context.step);
  auto analysis = analyse_storage_step(context.step->storage, context.root);
  if (!analysis) {
    preview.blocker = analysis.error().message;
    preview.lines.push_back("cannot run: " + analysis.error().message);
    return preview;
  }
  for (const DiskWork& disk : analysis->disks) {
    const TableModel& before = disk.plan.before;
    preview.lines.push_back(fmt::format(
        "{} ({}, {} sectors of {} bytes usable {}-{}):", before.disk, to_string(before.label),
        before.last_lba + 1, before.sector_size, before.first_lba, before.last_lba));
    for (const PlannedOp& op : disk.plan.ops) {
      preview.lines.push_back(fmt::format("  {}{}", op.change ? "" : "(done) ", op.summary));
    }
    preview.lines.push_back(" before:");
    for (const std::string& line : describe_table(before)) preview.lines.push_back(line);
    preview.lines.push_back(" after:");
    for (const std::string& line : describe_table(disk.plan.after)) preview.lines.push_back(line);
  }
  for (const std::string& line : analysis->requirements) {
    preview.lines.push_back("requires " + line);
  }
  if (preview.irreversible) {
    preview.lines.push_back(
        "grow-partition cannot be undone: a fallback keeps the grown partition");
  }
  preview.detail_json = detail_json(*analysis);
  return preview;
}

}  // namespace bootstate

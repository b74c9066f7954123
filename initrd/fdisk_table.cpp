// libfdisk calls behind read_table/write_table. libfdisk reports through its "ask" callback:
// we collect its warnings into the error message and answer no question (dialogs are off),
// so a missing value is a failure instead of a prompt on the initrd console.
#include "initrd/fdisk_table.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include "initrd/util_linux.hpp"

namespace bootstate {
namespace {

using util_linux::Fdisk;

// The unref functions come from the loaded library (initrd/util_linux.hpp), so each pointer
// carries its deleter.
using ContextPtr = std::unique_ptr<fdisk_context, decltype(Fdisk::unref_context)>;
using PartitionPtr = std::unique_ptr<fdisk_partition, decltype(Fdisk::unref_partition)>;
using TablePtr = std::unique_ptr<fdisk_table, decltype(Fdisk::unref_table)>;

struct Session {
  explicit Session(const Fdisk& library) : fdisk(library), context(nullptr, fdisk.unref_context) {}
  const Fdisk& fdisk;
  ContextPtr context;
  std::string messages;  // libfdisk's warnings, for error messages
};

int collect_messages(fdisk_context*, fdisk_ask* ask, void* data) {
  auto* session = static_cast<Session*>(data);
  const Fdisk& fdisk = session->fdisk;
  switch (fdisk.ask_get_type(ask)) {
    case FDISK_ASKTYPE_INFO:
      return 0;
    case FDISK_ASKTYPE_WARN:
    case FDISK_ASKTYPE_WARNX:
      if (const char* text = fdisk.ask_print_get_mesg(ask)) {
        if (!session->messages.empty()) session->messages += "; ";
        session->messages += text;
      }
      return 0;
    default:
      return -EINVAL;  // a question: nobody is there to answer it
  }
}

Error fdisk_error(const Session& session, int rc, std::string_view what) {
  std::string text = fmt::format("{}: {}", what, errno_text(rc < 0 ? -rc : rc));
  if (!session.messages.empty()) text += fmt::format(" (libfdisk: {})", session.messages);
  return Error{ErrorCode::Io, text};
}

Expected<std::unique_ptr<Session>> open_disk(const std::string& path, bool writable) {
  auto library = util_linux::fdisk();
  if (!library) return library.error().with_context(fmt::format("open {}", path));
  const Fdisk& fdisk = **library;
  auto session = std::make_unique<Session>(fdisk);
  session->context.reset(fdisk.new_context());
  if (!session->context) return make_error(ErrorCode::Io, "{}: out of memory", path);
  fdisk.set_ask(session->context.get(), collect_messages, session.get());
  fdisk.disable_dialogs(session->context.get(), 1);
  int rc = fdisk.assign_device(session->context.get(), path.c_str(), writable ? 0 : 1);
  if (rc != 0) return fdisk_error(*session, rc, fmt::format("open {}", path));
  return session;
}

Expected<TableModel> read_model(Session& session, const std::string& display) {
  const Fdisk& fdisk = session.fdisk;
  fdisk_context* context = session.context.get();
  TableModel table;
  table.disk = display;
  if (!fdisk.has_label(context)) {
    return make_error(ErrorCode::NotFound, "{} has no partition table", display);
  }
  if (fdisk.is_labeltype(context, FDISK_DISKLABEL_GPT)) {
    table.label = LabelKind::Gpt;
  } else if (fdisk.is_labeltype(context, FDISK_DISKLABEL_DOS)) {
    table.label = LabelKind::Dos;
  } else {
    return make_error(ErrorCode::Unsupported, "{} has a {} partition table (only gpt and dos)",
                      display, fdisk.label_get_name(fdisk.get_label(context, nullptr)));
  }
  table.sector_size = fdisk.get_sector_size(context);
  table.grain = std::max<std::uint64_t>(1, fdisk.get_grain_size(context) / table.sector_size);
  table.first_lba = fdisk.get_first_lba(context);
  table.last_lba = fdisk.get_last_lba(context);
  table.max_partitions = table.label == LabelKind::Gpt ? fdisk.get_npartitions(context) : 4;
  std::string dos_id;
  if (table.label == LabelKind::Dos) {
    char* id = nullptr;
    if (fdisk.get_disklabel_id(context, &id) == 0 && id) {
      dos_id = std::string(id).substr(std::strncmp(id, "0x", 2) == 0 ? 2 : 0);
      std::free(id);
    }
  }

  fdisk_table* raw = nullptr;
  if (int rc = fdisk.get_partitions(context, &raw); rc != 0) {
    return fdisk_error(session, rc, fmt::format("read partitions of {}", display));
  }
  TablePtr partitions(raw, fdisk.unref_table);
  for (std::size_t i = 0; i < fdisk.table_get_nents(raw); ++i) {
    fdisk_partition* entry = fdisk.table_get_partition(raw, i);
    if (!entry || fdisk.partition_is_freespace(entry) || !fdisk.partition_is_used(entry)) continue;
    PartitionModel partition;
    std::size_t index = fdisk.partition_get_partno(entry);
    partition.number = index + 1;
    partition.start = fdisk.partition_get_start(entry);
    partition.size = fdisk.partition_get_size(entry);
    partition.container = fdisk.partition_is_container(entry) != 0;
    if (const char* name = fdisk.partition_get_name(entry)) partition.name = name;
    const fdisk_parttype* type = fdisk.partition_get_type(entry);
    if (table.label == LabelKind::Gpt) {
      if (type && fdisk.parttype_get_string(type)) partition.type = fdisk.parttype_get_string(type);
      if (const char* uuid = fdisk.partition_get_uuid(entry)) partition.uuid = uuid;
      std::uint64_t attrs = 0;
      if (fdisk.gpt_get_partition_attrs(context, index, &attrs) == 0) partition.attrs = attrs;
    } else {
      partition.type = fmt::format("{:02x}", type ? fdisk.parttype_get_code(type) : 0);
      if (!dos_id.empty()) partition.uuid = fmt::format("{}-{:02}", dos_id, partition.number);
    }
    table.partitions.push_back(std::move(partition));
  }
  std::sort(table.partitions.begin(), table.partitions.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  return table;
}

fdisk_parttype* parttype_for(const Session& session, LabelKind label, const std::string& type) {
  const Fdisk& fdisk = session.fdisk;
  const fdisk_label* driver = fdisk.get_label(session.context.get(), nullptr);
  if (label == LabelKind::Gpt) {
    if (fdisk_parttype* known = fdisk.label_get_parttype_from_string(driver, type.c_str())) {
      fdisk.ref_parttype(known);  // the setters unref what they replace
      return known;
    }
    return fdisk.new_unknown_parttype(0, type.c_str());
  }
  unsigned code = static_cast<unsigned>(std::stoul(type, nullptr, 16));
  if (fdisk_parttype* known = fdisk.label_get_parttype_from_code(driver, code)) {
    fdisk.ref_parttype(known);
    return known;
  }
  return fdisk.new_unknown_parttype(code, nullptr);
}

Expected<void> add_partition(Session& session, LabelKind label, const PartitionModel& partition) {
  const Fdisk& fdisk = session.fdisk;
  fdisk_context* context = session.context.get();
  PartitionPtr template_(fdisk.new_partition(), fdisk.unref_partition);
  fdisk_partition* pa = template_.get();
  fdisk.partition_partno_follow_default(pa, 0);
  fdisk.partition_start_follow_default(pa, 0);
  fdisk.partition_end_follow_default(pa, 0);
  fdisk.partition_set_partno(pa, partition.number - 1);
  fdisk.partition_set_start(pa, partition.start);
  fdisk.partition_set_size(pa, partition.size);
  fdisk.partition_size_explicit(pa, 1);  // exactly these sectors: no alignment of the end
  fdisk_parttype* type = parttype_for(session, label, partition.type);
  fdisk.partition_set_type(pa, type);
  fdisk.unref_parttype(type);
  if (!partition.name.empty()) fdisk.partition_set_name(pa, partition.name.c_str());
  if (!partition.uuid.empty()) fdisk.partition_set_uuid(pa, partition.uuid.c_str());
  std::size_t number = 0;
  if (int rc = fdisk.add_partition(context, pa, &number); rc != 0) {
    return fdisk_error(session, rc, fmt::format("add partition {}", partition.number));
  }
  if (partition.attrs != 0) {
    if (int rc = fdisk.gpt_set_partition_attrs(context, partition.number - 1, partition.attrs)) {
      return fdisk_error(session, rc,
                         fmt::format("set attributes of partition {}", partition.number));
    }
  }
  return {};
}

Expected<void> change_partition(Session& session, LabelKind label, const PartitionModel& from,
                                const PartitionModel& to) {
  const Fdisk& fdisk = session.fdisk;
  fdisk_context* context = session.context.get();
  std::size_t index = to.number - 1;
  if (from.start != to.start) {
    return make_error(ErrorCode::Unsupported, "partition {} would move; moving is not supported",
                      to.number);
  }
  if (from.name != to.name || from.size != to.size) {
    PartitionPtr template_(fdisk.new_partition(), fdisk.unref_partition);
    if (from.name != to.name) fdisk.partition_set_name(template_.get(), to.name.c_str());
    if (from.size != to.size) {
      fdisk.partition_set_size(template_.get(), to.size);
      fdisk.partition_size_explicit(template_.get(), 1);
    }
    if (int rc = fdisk.set_partition(context, index, template_.get()); rc != 0) {
      return fdisk_error(session, rc, fmt::format("change partition {}", to.number));
    }
  }
  if (from.type != to.type) {
    fdisk_parttype* type = parttype_for(session, label, to.type);
    int rc = fdisk.set_partition_type(context, index, type);
    fdisk.unref_parttype(type);
    if (rc != 0)
      return fdisk_error(session, rc, fmt::format("set type of partition {}", to.number));
  }
  if (from.attrs != to.attrs) {
    if (int rc = fdisk.gpt_set_partition_attrs(context, index, to.attrs); rc != 0) {
      return fdisk_error(session, rc, fmt::format("set attributes of partition {}", to.number));
    }
  }
  if (from.uuid != to.uuid && label == LabelKind::Gpt) {
    return make_error(ErrorCode::Unsupported, "partition {}: changing a PARTUUID is not supported",
                      to.number);
  }
  return {};
}

}  // namespace

Expected<TableModel> read_table(const std::string& path, const std::string& display) {
  auto session = open_disk(path, true);
  if (!session) session = open_disk(path, false);  // read-only media: still describable
  if (!session) return session.error();
  return read_model(**session, display);
}

Expected<WriteReport> write_table(const std::string& path, const TableModel& before,
                                  const TableModel& after) {
  auto opened = open_disk(path, true);
  if (!opened) return opened.error();
  Session& session = **opened;
  const Fdisk& fdisk = session.fdisk;
  fdisk_context* context = session.context.get();
  auto current = read_model(session, before.disk);
  if (!current) return current.error();
  if (current->partitions != before.partitions || current->last_lba != before.last_lba) {
    return make_error(ErrorCode::Failed, "{} changed since it was read; nothing written",
                      before.disk);
  }
  fdisk_table* original = nullptr;  // what the kernel knows, to tell it only the differences
  if (int rc = fdisk.get_partitions(context, &original); rc != 0) {
    return fdisk_error(session, rc, fmt::format("read partitions of {}", before.disk));
  }
  TablePtr original_table(original, fdisk.unref_table);

  for (const PartitionModel& old : before.partitions) {
    if (after.find(old.number)) continue;
    if (int rc = fdisk.delete_partition(context, old.number - 1); rc != 0) {
      return fdisk_error(session, rc, fmt::format("delete partition {}", old.number));
    }
  }
  for (const PartitionModel& wanted : after.partitions) {
    const PartitionModel* old = before.find(wanted.number);
    if (!old) {
      BOOTSTATE_TRY(add_partition(session, after.label, wanted));
    } else if (!(*old == wanted)) {
      BOOTSTATE_TRY(change_partition(session, after.label, *old, wanted));
    }
  }
  if (int rc = fdisk.write_disklabel(context); rc != 0) {
    return fdisk_error(session, rc, fmt::format("write the partition table of {}", before.disk));
  }
  WriteReport report;
  report.block_device = !fdisk.is_regfile(context);
  if (report.block_device) {
    int rc = fdisk.reread_changes(context, original);
    report.kernel = rc == 0 ? "the kernel re-read the changed partitions"
                            : fmt::format("the kernel could not re-read the partitions: {}",
                                          errno_text(rc < 0 ? -rc : rc));
  }
  if (int rc = fdisk.deassign_device(context, 0); rc != 0) {  // 0: fsync before close
    return fdisk_error(session, rc, fmt::format("sync {}", before.disk));
  }
  return report;
}

}  // namespace bootstate

// Syntax rules of storage operations (issue #5's plan format). Each op names the fields it
// needs and the ones it may have; anything else is an unknown key, so a typo never silently
// turns into "not set".
#include <cctype>

#include "core/json_fields.hpp"
#include "core/plan_rules.hpp"

namespace bootstate {
namespace {

struct OpFields {
  StorageOpKind kind;
  std::vector<std::string_view> required;
  std::vector<std::string_view> optional;
};

const std::vector<OpFields>& op_fields() {
  static const std::vector<OpFields> table = {
      {StorageOpKind::GrowPartition, {"disk", "partition", "size"}, {}},
      {StorageOpKind::AddPartition, {"disk", "name", "type", "size"}, {"uuid"}},
      {StorageOpKind::SetPartitionName, {"disk", "partition", "name"}, {}},
      {StorageOpKind::SetPartitionType, {"disk", "partition", "type"}, {}},
      {StorageOpKind::SetPartitionAttrs, {"disk", "partition", "attrs"}, {}},
      {StorageOpKind::Require, {"device"}, {"fstype", "label", "uuid", "min-size"}},
  };
  return table;
}

// Checked by hand, not with std::regex: regex links the C++ locale into the program
// (core/read_file.hpp says what that costs).
bool all_digits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// 8-4-4-4-12 hexadecimal digits.
bool is_guid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

Expected<void> check_partition_ref(const FieldReader& object, const std::string& ref) {
  if (ref.rfind("PARTLABEL=", 0) == 0 && ref.size() > 10) return {};
  if (ref.rfind("PARTUUID=", 0) == 0 && is_guid(std::string_view(ref).substr(9))) return {};
  const bool partition_number = !ref.empty() && ref.size() <= 4 && ref[0] != '0' && all_digits(ref);
  if (partition_number) return {};
  return object.error_at("partition", fmt::format("\"{}\" is not PARTLABEL=…, PARTUUID=<guid> or "
                                                  "a partition number",
                                                  ref));
}

// Devices for `require` may also be named by tag, as libblkid resolves them.
Expected<void> check_device(const FieldReader& object, std::string_view key,
                            const std::string& device, bool tags_allowed) {
  if (!device.empty() && device[0] == '/') return {};
  if (tags_allowed) {
    for (std::string_view tag : {"PARTLABEL=", "PARTUUID=", "LABEL=", "UUID="}) {
      if (device.rfind(tag, 0) == 0 && device.size() > tag.size()) return {};
    }
  }
  return object.error_at(key,
                         fmt::format("\"{}\" is not an absolute device path{}", device,
                                     tags_allowed ? " or LABEL=/UUID=/PARTLABEL=/PARTUUID=" : ""));
}

Expected<std::vector<std::string>> read_attrs(const FieldReader& object) {
  const rapidjson::Value* value = object.get("attrs");
  if (!value->IsArray() || value->Empty()) {
    return object.error_at("attrs", "expected a non-empty array of attribute names or bit numbers");
  }
  std::vector<std::string> attrs;
  for (rapidjson::SizeType i = 0; i < value->Size(); ++i) {
    const rapidjson::Value& item = (*value)[i];
    std::string path = json_index_path(object.path_of("attrs"), i);
    if (item.IsUint() && item.GetUint() < 64) {
      attrs.push_back(std::to_string(item.GetUint()));
    } else if (item.IsString() && item.GetStringLength() > 0) {
      attrs.emplace_back(item.GetString(), item.GetStringLength());
    } else {
      return make_error(ErrorCode::InvalidInput, "{}: expected a name or a bit number 0-63", path);
    }
  }
  return attrs;
}

}  // namespace

Expected<std::uint64_t> parse_plan_size(std::string_view text, bool allow_max) {
  if (text == "max") {
    if (allow_max) return std::uint64_t{0};
    return make_error(ErrorCode::InvalidInput, "\"max\" is not allowed here");
  }
  // 1 to 15 digits and an optional K, M, G or T.
  std::string_view digits = text;
  int shift = 0;
  if (!digits.empty()) {
    const std::size_t suffix = std::string_view("KMGT").find(digits.back());
    if (suffix != std::string_view::npos) {
      shift = 10 * static_cast<int>(suffix + 1);
      digits.remove_suffix(1);
    }
  }
  if (digits.empty() || digits.size() > 15 || !all_digits(digits)) {
    return make_error(ErrorCode::InvalidInput,
                      "\"{}\" is not a size (digits with an optional K, M, G or T suffix{})", text,
                      allow_max ? ", or \"max\"" : "");
  }
  std::uint64_t value = 0;
  for (char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  if (value == 0) return make_error(ErrorCode::InvalidInput, "a size must not be zero");
  if (value > (UINT64_MAX >> shift)) {
    return make_error(ErrorCode::InvalidInput, "\"{}\" is too large for 64 bits", text);
  }
  return value << shift;
}

Expected<StorageOperation> parse_storage_operation(const rapidjson::Value& value,
                                                   const std::string& path) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  auto op_text = object->required_string("op");
  if (!op_text) return op_text.error();
  auto kind = parse_storage_op_kind(*op_text);
  if (!kind) return object->error_at("op", fmt::format("unknown operation \"{}\"", *op_text));

  const OpFields* fields = nullptr;
  for (const OpFields& candidate : op_fields()) {
    if (candidate.kind == *kind) fields = &candidate;
  }
  std::vector<std::string_view> allowed = {"op", "allow-destroy"};
  allowed.insert(allowed.end(), fields->required.begin(), fields->required.end());
  allowed.insert(allowed.end(), fields->optional.begin(), fields->optional.end());
  BOOTSTATE_TRY(object->reject_unknown(allowed));
  for (std::string_view key : fields->required) {
    if (!object->has(key))
      return object->error_at(key, fmt::format("missing (required by {})", *op_text));
  }

  StorageOperation operation;
  operation.op = *kind;
  auto allow_destroy = object->optional_bool("allow-destroy", false);
  if (!allow_destroy) return allow_destroy.error();
  operation.allow_destroy = *allow_destroy;

  // Read every string field that is present; `attrs` is the only non-string one.
  struct StringField {
    std::string_view key;
    std::string* target;
  };
  for (StringField field :
       {StringField{"disk", &operation.disk}, StringField{"partition", &operation.partition},
        StringField{"size", &operation.size}, StringField{"name", &operation.name},
        StringField{"type", &operation.type}, StringField{"uuid", &operation.uuid},
        StringField{"device", &operation.device}, StringField{"fstype", &operation.fstype},
        StringField{"label", &operation.label}, StringField{"min-size", &operation.min_size}}) {
    if (!object->has(field.key)) continue;
    auto text = object->required_string(field.key);
    if (!text) return text.error();
    if (text->empty()) return object->error_at(field.key, "must not be empty");
    *field.target = std::move(*text);
  }

  if (object->has("disk")) BOOTSTATE_TRY(check_device(*object, "disk", operation.disk, false));
  if (object->has("device")) BOOTSTATE_TRY(check_device(*object, "device", operation.device, true));
  if (object->has("partition")) BOOTSTATE_TRY(check_partition_ref(*object, operation.partition));
  if (object->has("size")) {
    if (auto size = parse_plan_size(operation.size, true); !size) {
      return object->error_at("size", size.error().message);
    }
  }
  if (object->has("min-size")) {
    if (auto size = parse_plan_size(operation.min_size, false); !size) {
      return object->error_at("min-size", size.error().message);
    }
  }
  if (object->has("uuid") && *kind == StorageOpKind::AddPartition && !is_guid(operation.uuid)) {
    return object->error_at("uuid", fmt::format("\"{}\" is not a GUID", operation.uuid));
  }
  if (object->has("attrs")) {
    auto attrs = read_attrs(*object);
    if (!attrs) return attrs.error();
    operation.attrs = std::move(*attrs);
  }
  return operation;
}

}  // namespace bootstate

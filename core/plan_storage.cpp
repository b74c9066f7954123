// Syntax rules of storage operations (issue #5's plan format). Each op names the fields it
// needs and the ones it may have; anything else is an unknown key, so a typo never silently
// turns into "not set".
#include <regex>

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

bool is_guid(std::string_view text) {
  static const std::regex pattern(
      "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  return std::regex_match(text.begin(), text.end(), pattern);
}

Expected<void> check_partition_ref(const FieldReader& object, const std::string& ref) {
  static const std::regex number("[1-9][0-9]{0,3}");
  if (ref.rfind("PARTLABEL=", 0) == 0 && ref.size() > 10) return {};
  if (ref.rfind("PARTUUID=", 0) == 0 && is_guid(std::string_view(ref).substr(9))) return {};
  if (std::regex_match(ref, number)) return {};
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
  static const std::regex pattern("([0-9]{1,15})([KMGT]?)");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_match(text.begin(), text.end(), match, pattern)) {
    return make_error(ErrorCode::InvalidInput,
                      "\"{}\" is not a size (digits with an optional K, M, G or T suffix{})", text,
                      allow_max ? ", or \"max\"" : "");
  }
  std::uint64_t value = std::stoull(match[1].str());
  int shift = 0;
  if (match[2].length() == 1) shift = 10 * (1 + std::string_view("KMGT").find(match[2].str()[0]));
  if (value == 0) return make_error(ErrorCode::InvalidInput, "a size must not be zero");
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

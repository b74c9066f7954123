// The plan's `checks` (docs/DESIGN.md "Checks and resolutions"): each check's command and the
// resolutions it offers. A resolution is a migration template: it is validated here by the very
// rules of a plan migration (read_migration), as the migration "CHECK.RESOLUTION" it becomes
// when chosen, so a chosen resolution can never fail a rule that a migration would not.
#include <rapidjson/document.h>

#include <set>

#include "core/plan.hpp"
#include "core/plan_rules.hpp"

namespace bootstate {
namespace {

// A resolution is a migration, and a migration has no account of its own: each of its command
// steps names `user`/`group` (as in any migration). Refused rather than ignored, so a resolution
// meant to run as an unprivileged user never runs as root by mistake.
Expected<void> refuse_user(const FieldReader& object) {
  if (!object.has("user") && !object.has("group")) return {};
  return object.error_at(object.has("user") ? "user" : "group",
                         "a resolution runs as the `user`/`group` of each of its steps; set it "
                         "there (steps[].user)");
}

// The resolution object at `path` as the migration it becomes: the same members, `id` replaced
// by "CHECK.RESOLUTION" and `policy` required (choosing it is the operator's acceptance).
Expected<CheckResolution> read_resolution(const rapidjson::Value& value, const std::string& path,
                                          const Check& check, const Plan& plan,
                                          rapidjson::StringBuffer& text_buffer) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  BOOTSTATE_TRY(object->reject_unknown(
      {"id", "description", "backup", "steps", "undo", "keep", "after", "user", "group"}));
  BOOTSTATE_TRY(refuse_user(*object));
  auto id = read_id(*object);
  if (!id) return id.error();
  const std::string migration_id = check.id + "." + *id;
  if (!valid_id(migration_id)) {
    return object->error_at(
        "id", fmt::format("the migration id \"{}\" it runs as is longer than 64 characters "
                          "(shorten the check's or the resolution's id)",
                          migration_id));
  }
  if (plan.find(migration_id) != nullptr) {
    return object->error_at("id", fmt::format("it runs as migration \"{}\", which the plan "
                                              "already has",
                                              migration_id));
  }
  rapidjson::Document migration_value;
  migration_value.SetObject();
  auto& allocator = migration_value.GetAllocator();
  for (auto member = value.MemberBegin(); member != value.MemberEnd(); ++member) {
    rapidjson::Value key(member->name, allocator);
    if (std::string_view(member->name.GetString(), member->name.GetStringLength()) == "id") {
      migration_value.AddMember(
          key,
          rapidjson::Value(migration_id.data(),
                           static_cast<rapidjson::SizeType>(migration_id.size()), allocator),
          allocator);
      migration_value.AddMember("policy", "required", allocator);
    } else {
      migration_value.AddMember(key, rapidjson::Value(member->value, allocator), allocator);
    }
  }
  auto migration = read_migration(migration_value, path, text_buffer);
  if (!migration) return migration.error();
  for (std::size_t i = 0; i < migration->after.size(); ++i) {
    if (plan.find(migration->after[i]) == nullptr) {
      return make_error(ErrorCode::InvalidInput, "{}: unknown migration \"{}\"",
                        json_index_path(object->path_of("after"), i), migration->after[i]);
    }
  }
  CheckResolution resolution;
  resolution.id = std::move(*id);
  resolution.description = migration->description;
  resolution.migration = std::move(*migration);
  return resolution;
}

Expected<Check> read_check(const rapidjson::Value& value, const std::string& path, const Plan& plan,
                           rapidjson::StringBuffer& text_buffer) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  BOOTSTATE_TRY(object->reject_unknown(
      {"id", "description", "phase", "command", "timeout", "resolutions", "user", "group"}));
  Check check;
  auto id = read_id(*object);
  if (!id) return id.error();
  check.id = std::move(*id);
  auto description = object->optional_string("description");
  if (!description) return description.error();
  check.description = std::move(*description);
  auto phase_text = object->required_string("phase");
  if (!phase_text) return phase_text.error();
  auto phase = parse_phase(*phase_text);
  if (!phase) return object->error_at("phase", fmt::format("unknown phase \"{}\"", *phase_text));
  check.phase = *phase;
  BOOTSTATE_TRY(read_account(*object, check.phase, check.user, check.group));
  auto argv = read_argv(*object, "command");
  if (!argv) return argv.error();
  check.argv = std::move(*argv);
  auto timeout = object->optional_integer("timeout");
  if (!timeout) return timeout.error();
  if (*timeout) {
    if (**timeout <= 0 || **timeout > 24 * 3600) {
      return object->error_at("timeout", "must be between 1 and 86400 seconds");
    }
    check.timeout_seconds = static_cast<std::uint32_t>(**timeout);
  }
  auto resolutions = object->optional_array("resolutions");
  if (!resolutions) return resolutions.error();
  if (*resolutions != nullptr) {
    const std::string array_path = object->path_of("resolutions");
    for (rapidjson::SizeType i = 0; i < (*resolutions)->Size(); ++i) {
      const std::string item_path = json_index_path(array_path, i);
      auto resolution = read_resolution((**resolutions)[i], item_path, check, plan, text_buffer);
      if (!resolution) return resolution.error();
      if (check.find(resolution->id) != nullptr) {
        return make_error(ErrorCode::InvalidInput, "{}.id: duplicate resolution id \"{}\"",
                          item_path, resolution->id);
      }
      check.resolutions.push_back(std::move(*resolution));
    }
  }
  return check;
}

}  // namespace

Expected<void> read_checks(const FieldReader& object, Plan& plan, TextDigest& digest) {
  auto checks = object.optional_array("checks");
  if (!checks) return checks.error();
  if (*checks == nullptr || (*checks)->Empty()) return {};
  rapidjson::StringBuffer text_buffer;
  std::set<std::string, std::less<>> migration_ids;  // of the resolutions, across checks
  for (rapidjson::SizeType i = 0; i < (*checks)->Size(); ++i) {
    const std::string path = json_index_path("checks", i);
    auto check = read_check((**checks)[i], path, plan, text_buffer);
    if (!check) return check.error();
    if (plan.find_check(check->id) != nullptr) {
      return make_error(ErrorCode::InvalidInput, "{}.id: duplicate check id \"{}\"", path,
                        check->id);
    }
    // "a.b" + "c" and "a" + "b.c" are both migration "a.b.c": two checks cannot share one.
    for (std::size_t r = 0; r < check->resolutions.size(); ++r) {
      if (!migration_ids.insert(check->resolutions[r].migration.id).second) {
        return make_error(ErrorCode::InvalidInput,
                          "{}.id: migration id \"{}\" is also another check's resolution",
                          json_index_path(path + ".resolutions", r),
                          check->resolutions[r].migration.id);
      }
    }
    plan.checks.push_back(std::move(*check));
  }
  digest.add(",checks:");
  digest.add(json_to_text(**checks, text_buffer));
  return {};
}

const CheckResolution* Check::find(std::string_view resolution_id) const {
  for (const CheckResolution& resolution : resolutions) {
    if (resolution.id == resolution_id) return &resolution;
  }
  return nullptr;
}

const Check* Plan::find_check(std::string_view id) const {
  for (const Check& check : checks) {
    if (check.id == id) return &check;
  }
  return nullptr;
}

}  // namespace bootstate

// The plan's `checks` (docs/DESIGN.md "Checks and resolutions"): each check's command and the
// resolutions it offers; and the resolutions a migration offers for the items of its steps.
// A resolution is a migration template: it is validated here by the very rules of a plan
// migration (read_migration), as the migration "OWNER.RESOLUTION" it becomes when chosen, so a
// chosen resolution can never fail a rule that a migration would not.
#include <rapidjson/document.h>

#include <map>
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
// by "OWNER.RESOLUTION" and `policy` required (choosing it is the operator's acceptance).
// `owner`: the check's or the migration's id; `owner_kind`: "check" or "migration".
Expected<CheckResolution> read_resolution(const rapidjson::Value& value, const std::string& path,
                                          std::string_view owner, std::string_view owner_kind,
                                          const Plan& plan, rapidjson::StringBuffer& text_buffer) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  BOOTSTATE_TRY(object->reject_unknown(
      {"id", "description", "backup", "steps", "undo", "keep", "after", "user", "group"}));
  BOOTSTATE_TRY(refuse_user(*object));
  auto id = read_id(*object);
  if (!id) return id.error();
  const std::string migration_id = resolution_migration_id(owner, *id);
  if (!valid_id(migration_id)) {
    return object->error_at(
        "id", fmt::format("the migration id \"{}\" it runs as is longer than 64 characters "
                          "(shorten the {}'s or the resolution's id)",
                          migration_id, owner_kind));
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
      auto resolution =
          read_resolution((**resolutions)[i], item_path, check.id, "check", plan, text_buffer);
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

Expected<void> read_migration_resolutions(const rapidjson::Value& migrations, Plan& plan,
                                          TextDigest& digest) {
  // Most plans have none: one look at each migration object, nothing else.
  std::vector<rapidjson::SizeType> owners;
  for (rapidjson::SizeType i = 0; i < migrations.Size(); ++i) {
    if (migrations[i].IsObject() && migrations[i].HasMember("resolutions")) owners.push_back(i);
  }
  if (owners.empty()) return {};
  rapidjson::StringBuffer text_buffer;
  std::map<std::string, std::string, std::less<>> taken;  // migration id → the owner's id
  digest.add(",migration-resolutions:");
  for (rapidjson::SizeType i : owners) {
    Migration& owner = plan.migrations[i];
    const std::string owner_path = json_index_path("migrations", i);
    auto object = FieldReader::open(migrations[i], owner_path);
    if (!object) return object.error();
    auto resolutions = object->optional_array("resolutions");
    if (!resolutions) return resolutions.error();
    if (*resolutions == nullptr || (*resolutions)->Empty()) {
      return object->error_at("resolutions", "must be a non-empty array (or left out)");
    }
    const std::vector<bool> excluded = start_and_followers(plan, i);
    const std::string array_path = object->path_of("resolutions");
    for (rapidjson::SizeType r = 0; r < (*resolutions)->Size(); ++r) {
      const std::string item_path = json_index_path(array_path, r);
      auto resolution =
          read_resolution((**resolutions)[r], item_path, owner.id, "migration", plan, text_buffer);
      if (!resolution) return resolution.error();
      if (owner.find_resolution(resolution->id) != nullptr) {
        return make_error(ErrorCode::InvalidInput, "{}.id: duplicate resolution id \"{}\"",
                          item_path, resolution->id);
      }
      const std::vector<std::string>& after = resolution->migration.after;
      for (std::size_t a = 0; a < after.size(); ++a) {
        if (!excluded[plan.index.find(after[a])->second]) continue;
        return make_error(
            ErrorCode::InvalidInput,
            "{}: \"{}\" {}: migration \"{}\" runs after its chosen resolution, so "
            "the resolution cannot follow it (a cycle)",
            json_index_path(item_path + ".after", a), after[a],
            after[a] == owner.id ? "is the migration itself" : "runs after the migration",
            owner.id);
      }
      // "a.b" + "c" and "a" + "b.c" are both migration "a.b.c": two owners cannot share one.
      auto [existing, inserted] = taken.emplace(resolution->migration.id, owner.id);
      if (!inserted) {
        return make_error(ErrorCode::InvalidInput,
                          "{}.id: migration id \"{}\" is also a resolution of migration \"{}\"",
                          item_path, resolution->migration.id, existing->second);
      }
      owner.resolutions.push_back(std::move(*resolution));
    }
    digest.add(owner.id);
    digest.add(":");
    digest.add(json_to_text(**resolutions, text_buffer));
  }
  plan.has_migration_resolutions = true;
  return {};
}

Expected<void> read_checks(const FieldReader& object, Plan& plan, TextDigest& digest) {
  auto checks = object.optional_array("checks");
  if (!checks) return checks.error();
  if (*checks == nullptr || (*checks)->Empty()) return {};
  rapidjson::StringBuffer text_buffer;
  std::set<std::string, std::less<>> migration_ids;  // of the resolutions, across checks
  std::map<std::string, std::string, std::less<>> of_migrations;  // resolution id → migration
  if (plan.has_migration_resolutions) {
    for (const Migration& migration : plan.migrations) {
      for (const CheckResolution& resolution : migration.resolutions) {
        of_migrations.emplace(resolution.migration.id, migration.id);
      }
    }
  }
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
      if (auto owner = of_migrations.find(check->resolutions[r].migration.id);
          owner != of_migrations.end()) {
        return make_error(ErrorCode::InvalidInput,
                          "{}.id: migration id \"{}\" is also a resolution of migration \"{}\"",
                          json_index_path(path + ".resolutions", r),
                          check->resolutions[r].migration.id, owner->second);
      }
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

const CheckResolution* Migration::find_resolution(std::string_view resolution_id) const {
  for (const CheckResolution& resolution : resolutions) {
    if (resolution.id == resolution_id) return &resolution;
  }
  return nullptr;
}

std::string_view source_migration(std::string_view source) {
  const std::size_t slash = source.find('/');
  return slash == std::string_view::npos ? std::string_view() : source.substr(0, slash);
}

const std::vector<CheckResolution>* Plan::resolutions_of(std::string_view source) const {
  const std::string_view migration_id = source_migration(source);
  if (migration_id.empty()) {
    const Check* check = find_check(source);
    return check != nullptr ? &check->resolutions : nullptr;
  }
  const Migration* migration = find(migration_id);
  return migration != nullptr ? &migration->resolutions : nullptr;
}

std::string resolution_migration_id(std::string_view source, std::string_view resolution) {
  const std::string_view migration_id = source_migration(source);
  return fmt::format("{}.{}", migration_id.empty() ? source : migration_id, resolution);
}

}  // namespace bootstate

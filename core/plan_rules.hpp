// Internal to the plan parser: the rule groups that live in their own files.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/json_fields.hpp"
#include "core/plan.hpp"

namespace bootstate {

// "id" of `object`: present, a string, and a valid id (plan.hpp valid_id).
Expected<std::string> read_id(const FieldReader& object);
// `key` of `object`: a non-empty array of strings whose first is an absolute path.
Expected<std::vector<std::string>> read_argv(const FieldReader& object, std::string_view key);

// One migration object at `path` ("migrations[2]"), without the cross-migration rules.
// `text_buffer`: where its canonical text is written, reused across the migrations of a plan.
// `plan_member`: a migration of the plan's `migrations`, which may have `resolutions` (read by
// read_migration_resolutions, left out of its definition_json); a resolution template or a
// recorded definition may not. `also_digest`: where its canonical text is digested too (the plan
// digest), in the same pass as its own digest.
Expected<Migration> read_migration(const rapidjson::Value& value, const std::string& path,
                                   rapidjson::StringBuffer& text_buffer, bool plan_member = false,
                                   TextDigest* also_digest = nullptr);

// One storage operation at `path` ("migrations[0].steps[1].operations[3]"): the op is known,
// its required fields are present, no field of another op is given, and sizes, partition
// references, paths and UUIDs are well formed. Whether they fit the disk is decided when the
// step runs, against the real partition table.
Expected<StorageOperation> parse_storage_operation(const rapidjson::Value& value,
                                                   const std::string& path);

// Migration ids are unique; `after` names existing ids other than the migration itself; the
// `after` relation has no cycle (the message lists the cycle).
Expected<void> check_migration_graph(const Plan& plan);

// The plan's `checks` array (absent → none), validated completely: ids unique and distinct,
// argv absolute, resolutions valid migration templates whose `after` names plan migrations and
// whose migration id "CHECK.RESOLUTION" is a valid id no plan migration has. `plan.migrations`
// and `plan.index` are filled already. Appends the checks' canonical text to `digest`.
Expected<void> read_checks(const FieldReader& object, Plan& plan, TextDigest& digest);

// The `resolutions` of the plan's migrations (`migrations`, the plan's array, whose elements
// are plan.migrations, validated and indexed already), by the rules of a check's resolutions,
// each as migration "MIGRATION.RESOLUTION": a valid id no plan migration and no other
// resolution has, `after` naming plan migrations that do not run after MIGRATION (MIGRATION
// runs after its chosen resolution: that would be a cycle). Appends their canonical text to
// `digest` only when there are some (a plan without them keeps its digest).
Expected<void> read_migration_resolutions(const rapidjson::Value& migrations, Plan& plan,
                                          TextDigest& digest);

// Sizes in plans: "max" (only where `allow_max`) or digits with an optional K/M/G/T suffix
// (powers of 1024). Returns bytes; 0 means "max".
Expected<std::uint64_t> parse_plan_size(std::string_view text, bool allow_max);

// `user` / `group` of a step: a decimal id (0 to 4294967294) or a name ([A-Za-z_][A-Za-z0-9_.-]*,
// at most 32, an optional trailing `$`); in an initrd phase only an id (the initrd's account
// database is not the system's). Returns what is wrong, empty when it is fine.
std::string account_problem(std::string_view account, Phase phase);
// A decimal uid/gid, nullopt for a name.
std::optional<std::uint32_t> numeric_account(std::string_view account);
// The optional `user` and `group` members of `object` (a command step or a check running in
// `phase`) into `user` / `group`, each validated by account_problem (errors name the field).
Expected<void> read_account(const FieldReader& object, Phase phase, std::string& user,
                            std::string& group);

}  // namespace bootstate

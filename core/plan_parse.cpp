// plan.json schema 1 → Plan, validated completely before anything runs (docs/DESIGN.md "Plan").
// Structural rules live here; the storage operation rules in plan_storage.cpp; the rules that
// span migrations (unique ids, `after`, cycles) in plan_graph.cpp.
#include <rapidjson/document.h>

#include <algorithm>

#include "core/json_fields.hpp"
#include "core/plan.hpp"
#include "core/plan_rules.hpp"

namespace bootstate {

// [a-z0-9][a-z0-9._-]{0,63}, written out: std::regex cost 12 % of parsing a 1,000-migration
// plan (docs/PERFORMANCE.md).
bool valid_id(std::string_view id) {
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (id.empty() || id.size() > 64 || !lower_or_digit(id[0])) return false;
  return std::all_of(id.begin() + 1, id.end(),
                     [&](char c) { return lower_or_digit(c) || c == '.' || c == '_' || c == '-'; });
}

namespace {

// [A-Za-z_][A-Za-z0-9_]*
bool valid_environment_name(std::string_view name) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (name.empty() || !letter(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

}  // namespace

Expected<std::string> read_id(const FieldReader& object) {
  auto id = object.required_string("id");
  if (!id) return id;
  if (!valid_id(*id)) {
    return object.error_at(
        "id", fmt::format("invalid id \"{}\" (must match [a-z0-9][a-z0-9._-]{{0,63}})", *id));
  }
  return id;
}

// argv: a non-empty array of strings whose first element is an absolute path (no PATH lookup,
// no shell: what the plan names is exactly what runs).
Expected<std::vector<std::string>> read_argv(const FieldReader& object, std::string_view key) {
  auto argv = object.string_array(key);
  if (!argv) return argv;
  if (argv->empty()) return object.error_at(key, "must be a non-empty array (argv)");
  if ((*argv)[0].empty() || (*argv)[0][0] != '/') {
    return make_error(ErrorCode::InvalidInput,
                      "{}[0]: \"{}\" is not an absolute path (commands are executed directly, "
                      "without a shell or PATH lookup)",
                      object.path_of(key), (*argv)[0]);
  }
  return argv;
}

namespace {

Expected<void> read_command(const FieldReader& object, Step& step) {
  BOOTSTATE_TRY(
      object.reject_unknown({"id", "phase", "kind", "timeout", "reboot", "idempotent", "preview",
                             "command", "check", "environment", "user", "group"}));
  BOOTSTATE_TRY(read_account(object, step.phase, step.command.user, step.command.group));
  auto argv = read_argv(object, "command");
  if (!argv) return argv.error();
  step.command.argv = std::move(*argv);
  if (object.has("check")) {
    auto check = read_argv(object, "check");
    if (!check) return check.error();
    step.command.check = std::move(*check);
  }
  auto environment = object.string_map("environment");
  if (!environment) return environment.error();
  for (auto& [name, value] : *environment) {
    if (!valid_environment_name(name)) {
      return make_error(ErrorCode::InvalidInput, "{}: invalid variable name",
                        json_member_path(object.path_of("environment"), name));
    }
    if (name.rfind("BOOTSTATE_", 0) == 0) {
      return make_error(ErrorCode::InvalidInput, "{}: BOOTSTATE_* variables are set by bootstate",
                        json_member_path(object.path_of("environment"), name));
    }
    step.command.environment.emplace(std::move(name), std::move(value));
  }
  return {};
}

Expected<void> read_firmware(const FieldReader& object, Step& step) {
  BOOTSTATE_TRY(
      object.reject_unknown({"id", "phase", "kind", "timeout", "reboot", "idempotent", "preview",
                             "device", "cabinet", "version", "allow-older", "allow-reinstall"}));
  FirmwareSpec& firmware = step.firmware;
  auto device = object.required_string("device");
  auto cabinet = object.required_string("cabinet");
  auto version = object.required_string("version");
  auto older = object.optional_bool("allow-older", false);
  auto reinstall = object.optional_bool("allow-reinstall", false);
  if (!device) return device.error();
  if (!cabinet) return cabinet.error();
  if (!version) return version.error();
  if (!older) return older.error();
  if (!reinstall) return reinstall.error();
  if (device->empty()) return object.error_at("device", "must not be empty");
  if (version->empty()) return object.error_at("version", "must not be empty");
  if (cabinet->empty() || (*cabinet)[0] != '/') {
    return object.error_at("cabinet", fmt::format("\"{}\" is not an absolute path", *cabinet));
  }
  firmware = FirmwareSpec{*device, *cabinet, *version, *older, *reinstall};
  return {};
}

Expected<void> read_storage(const FieldReader& object, Step& step) {
  BOOTSTATE_TRY(object.reject_unknown(
      {"id", "phase", "kind", "timeout", "reboot", "idempotent", "preview", "operations"}));
  auto operations = object.optional_array("operations");
  if (!operations) return operations.error();
  if (*operations == nullptr || (*operations)->Empty()) {
    return object.error_at("operations", "must be a non-empty array");
  }
  for (rapidjson::SizeType i = 0; i < (*operations)->Size(); ++i) {
    auto operation = parse_storage_operation((**operations)[i],
                                             json_index_path(object.path_of("operations"), i));
    if (!operation) return operation.error();
    step.storage.push_back(std::move(*operation));
  }
  return {};
}

// A kind runs only where its effect makes sense: storage before root is in use, firmware
// where fwupd (a stage-2 D-Bus service) runs.
Expected<void> check_kind_phase(const FieldReader& object, const Step& step) {
  bool allowed = step.kind == StepKind::Command ||
                 (step.kind == StepKind::Storage && step.phase != Phase::PostActivation) ||
                 (step.kind == StepKind::Firmware && step.phase == Phase::PostActivation);
  if (allowed) return {};
  return object.error_at("phase", fmt::format("a {} step cannot run in phase \"{}\"",
                                              to_string(step.kind), to_string(step.phase)));
}

// Fills `step` in place (it is an element of the migration's vector already): a Step is large,
// and returning it through Expected moved it twice for each of thousands of steps.
Expected<void> read_step(const rapidjson::Value& value, const std::string& path, Step& step) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  auto id = read_id(*object);
  if (!id) return id.error();
  step.id = std::move(*id);

  auto phase_text = object->required_string("phase");
  if (!phase_text) return phase_text.error();
  auto phase = parse_phase(*phase_text);
  if (!phase) return object->error_at("phase", fmt::format("unknown phase \"{}\"", *phase_text));
  step.phase = *phase;

  auto kind_text = object->required_string("kind");
  if (!kind_text) return kind_text.error();
  auto kind = parse_step_kind(*kind_text);
  if (!kind) return object->error_at("kind", fmt::format("unknown kind \"{}\"", *kind_text));
  step.kind = *kind;

  auto timeout = object->optional_integer("timeout");
  if (!timeout) return timeout.error();
  if (*timeout) {
    if (**timeout <= 0 || **timeout > 7 * 24 * 3600) {
      return object->error_at("timeout", "must be between 1 and 604800 seconds");
    }
    step.timeout_seconds = static_cast<std::uint32_t>(**timeout);
  }
  auto reboot = object->optional_bool("reboot", false);
  auto idempotent = object->optional_bool("idempotent", false);
  auto preview = object->optional_string("preview");
  if (!reboot) return reboot.error();
  if (!idempotent) return idempotent.error();
  if (!preview) return preview.error();
  step.reboot = *reboot;
  step.idempotent = *idempotent;
  step.preview = std::move(*preview);

  Expected<void> body;
  switch (step.kind) {
    case StepKind::Command:
      body = read_command(*object, step);
      break;
    case StepKind::Storage:
      body = read_storage(*object, step);
      break;
    case StepKind::Firmware:
      body = read_firmware(*object, step);
      break;
  }
  if (!body) return body.error();
  return check_kind_phase(*object, step);
}

Expected<std::vector<Step>> read_steps(const FieldReader& object, std::string_view key,
                                       bool required) {
  std::vector<Step> steps;
  auto array = object.optional_array(key);
  if (!array) return array.error();
  if (*array == nullptr || (*array)->Empty()) {
    if (required) return object.error_at(key, "must be a non-empty array of steps");
    return steps;
  }
  const std::string array_path = object.path_of(key);
  steps.reserve((*array)->Size());
  for (rapidjson::SizeType i = 0; i < (*array)->Size(); ++i) {
    std::string path = json_index_path(array_path, i);
    Step& step = steps.emplace_back();
    BOOTSTATE_TRY(read_step((**array)[i], path, step));
    // A migration has a handful of steps: comparing with the earlier ones beats a set.
    for (std::size_t j = 0; j + 1 < steps.size(); ++j) {
      if (steps[j].id == step.id) {
        return make_error(ErrorCode::InvalidInput, "{}.id: duplicate step id \"{}\"", path,
                          step.id);
      }
    }
  }
  return steps;
}

// Why each component matters: a restore deletes and replaces what is at the path, as root. `..`
// would reach outside the path the plan names ("/var/lib/app/../../etc"), `.` and empty
// components ("//", a trailing "/") name the same directory twice under different strings, and a
// newline or other control byte makes a path that messages and the journal print as two.
Expected<void> check_backup_path(std::string_view path) {
  if (path.empty() || path[0] != '/' || path == "/")
    return Error{ErrorCode::InvalidInput, "is not an absolute path below /"};
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return make_error(ErrorCode::InvalidInput, "holds a control character ({:#04x})",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
    }
  }
  std::string_view rest = path.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view component = rest.substr(0, slash);
    if (component.empty())
      return Error{ErrorCode::InvalidInput, "has an empty component (\"//\" or a trailing \"/\")"};
    if (component == "." || component == "..") {
      return make_error(ErrorCode::InvalidInput, "has a \"{}\" component", component);
    }
    if (slash == std::string_view::npos) return {};
    rest.remove_prefix(slash + 1);
  }
}

Expected<std::vector<std::string>> read_backup(const FieldReader& object) {
  auto paths = object.string_array("backup");
  if (!paths) return paths;
  for (std::size_t i = 0; i < paths->size(); ++i) {
    const std::string& path = (*paths)[i];
    if (auto valid = check_backup_path(path); !valid) {
      // The path is shown with its control characters escaped, as JSON would write it.
      return make_error(ErrorCode::InvalidInput, "{}: {:?} {}",
                        json_index_path(object.path_of("backup"), i), path, valid.error().message);
    }
  }
  return paths;
}

}  // namespace

Expected<Migration> read_migration(const rapidjson::Value& value, const std::string& path,
                                   rapidjson::StringBuffer& text_buffer, bool plan_member,
                                   TextDigest* also_digest) {
  auto object = FieldReader::open(value, path);
  if (!object) return object.error();
  if (plan_member) {
    BOOTSTATE_TRY(object->reject_unknown({"id", "description", "policy", "after", "backup", "steps",
                                          "undo", "keep", "resolutions"}));
  } else {
    BOOTSTATE_TRY(object->reject_unknown(
        {"id", "description", "policy", "after", "backup", "steps", "undo", "keep"}));
  }
  Migration migration;
  auto id = read_id(*object);
  if (!id) return id.error();
  migration.id = std::move(*id);
  auto description = object->optional_string("description");
  if (!description) return description.error();
  migration.description = std::move(*description);

  auto policy_text = object->required_string("policy");
  if (!policy_text) return policy_text.error();
  auto policy = parse_policy(*policy_text);
  if (!policy) {
    return object->error_at("policy", fmt::format("unknown policy \"{}\" (required, "
                                                  "recommended or optional)",
                                                  *policy_text));
  }
  migration.policy = *policy;

  auto after = object->string_array("after");
  if (!after) return after.error();
  migration.after = std::move(*after);
  auto backup = read_backup(*object);
  if (!backup) return backup.error();
  migration.backup = std::move(*backup);
  auto keep = object->optional_bool("keep", false);
  if (!keep) return keep.error();
  migration.keep = *keep;

  auto steps = read_steps(*object, "steps", true);
  if (!steps) return steps.error();
  migration.steps = std::move(*steps);
  auto undo = read_steps(*object, "undo", false);
  if (!undo) return undo.error();
  migration.undo = std::move(*undo);

  // The snapshot is taken before the first step: the root file system must be mounted then.
  if (!migration.backup.empty() && !root_mounted(migration.steps.front().phase)) {
    return object->error_at("backup", fmt::format("the first step (\"{}\") runs in {}, where the "
                                                  "root file system is not mounted to back up",
                                                  migration.steps.front().id,
                                                  to_string(migration.steps.front().phase)));
  }
  if (plan_member && object->has("resolutions")) {
    // The definition without its resolution templates (plan.hpp Migration::resolutions): the
    // recorded definition and the digest are those of the migration's own effect. Copied only
    // for the few migrations that have resolutions.
    rapidjson::Document own;
    own.SetObject();
    for (auto member = value.MemberBegin(); member != value.MemberEnd(); ++member) {
      if (std::string_view(member->name.GetString(), member->name.GetStringLength()) ==
          "resolutions") {
        continue;
      }
      own.AddMember(rapidjson::Value(member->name, own.GetAllocator()),
                    rapidjson::Value(member->value, own.GetAllocator()), own.GetAllocator());
    }
    migration.definition_json = json_to_text(own, text_buffer);
  } else {
    migration.definition_json = json_to_text(value, text_buffer);
  }
  TextDigest digest;
  if (also_digest != nullptr) {
    digest.add_also_to(migration.definition_json, *also_digest);
  } else {
    digest.add(migration.definition_json);
  }
  migration.digest = digest.hex();
  return migration;
}

namespace {

Expected<Plan> plan_from_document(const rapidjson::Document& document, std::string_view source,
                                  DefinitionTexts texts);

}  // namespace

Expected<Plan> parse_plan(std::string_view json_text, std::string_view source) {
  rapidjson::Document document;
  std::string buffer;  // the document's strings point into it
  BOOTSTATE_TRY(parse_json_document_in_place(json_text, source, document, buffer));
  return plan_from_document(document, source, DefinitionTexts::Keep);
}

Expected<Plan> parse_owned_plan(std::string&& json_text, std::string_view source,
                                DefinitionTexts texts) {
  rapidjson::Document document;
  std::string buffer;  // the document's strings point into it
  BOOTSTATE_TRY(parse_json_document_in_place(json_text, source, document, buffer));
  // Parsed: messages from here on name JSON paths, not lines. The plan's structs are built
  // while the document and its buffer live, and this is the most memory a `status` holds.
  std::string().swap(json_text);
  return plan_from_document(document, source, texts);
}

namespace {

Expected<Plan> plan_from_document(const rapidjson::Document& document, std::string_view source,
                                  DefinitionTexts texts) {
  auto in_source = [&](const Error& error) { return error.with_context(source); };
  if (auto strings = check_json_strings(document, ""); !strings) return in_source(strings.error());

  auto object = FieldReader::open(document, "");
  if (!object) return in_source(object.error());
  if (auto known = object->reject_unknown({"schema", "generation", "migrations", "checks"});
      !known) {
    return in_source(known.error());
  }
  Plan plan;
  auto schema = object->required_integer("schema");
  if (!schema) return in_source(schema.error());
  if (*schema != 1) {
    return in_source(object->error_at(
        "schema", fmt::format("unsupported schema {} (this bootstate reads schema 1)", *schema)));
  }
  auto generation = object->required_string("generation");
  if (!generation) return in_source(generation.error());
  if (generation->empty() || (*generation)[0] != '/') {
    return in_source(object->error_at("generation", "must be an absolute path (the toplevel)"));
  }
  plan.generation = std::move(*generation);

  auto migrations = object->optional_array("migrations");
  if (!migrations) return in_source(migrations.error());
  if (*migrations == nullptr)
    return in_source(object->error_at("migrations", "missing (required)"));
  plan.migrations.reserve((*migrations)->Size());
  rapidjson::StringBuffer text_buffer;
  // The migrations only: the initrd's copy of a plan differs from the toplevel's in
  // `generation` (docs/NIXOS.md), and both must open the same attempt.
  // The compact text of the array is its elements' texts, joined by commas: digested piece by
  // piece as each is made, never concatenated.
  TextDigest canonical;
  canonical.add("[");
  for (rapidjson::SizeType i = 0; i < (*migrations)->Size(); ++i) {
    if (i > 0) canonical.add(",");
    auto migration = read_migration((**migrations)[i], json_index_path("migrations", i),
                                    text_buffer, true, &canonical);
    if (!migration) return in_source(migration.error());
    // Let go at once, so the next migration's text takes its place in memory.
    if (texts == DefinitionTexts::Drop) std::string().swap(migration->definition_json);
    plan.migrations.push_back(std::move(*migration));
  }
  canonical.add("]");
  for (std::size_t i = 0; i < plan.migrations.size(); ++i) {
    plan.index.emplace(plan.migrations[i].id, i);
  }
  if (auto graph = check_migration_graph(plan); !graph) return in_source(graph.error());
  if (auto resolutions = read_migration_resolutions(**migrations, plan, canonical); !resolutions) {
    return in_source(resolutions.error());
  }
  // Checks change the digest only when there are some: the digest of a plan without checks
  // is what it was before checks existed (its attempt goes on after an upgrade of bootstate).
  if (auto checks = read_checks(*object, plan, canonical); !checks) {
    return in_source(checks.error());
  }
  plan.digest = canonical.hex();
  return plan;
}

}  // namespace

Expected<Migration> parse_migration_definition(std::string_view json_text) {
  rapidjson::Document document;
  BOOTSTATE_TRY(parse_json_document(json_text, "recorded definition", document));
  if (auto strings = check_json_strings(document, "definition"); !strings) {
    return strings.error().with_context("recorded definition");
  }
  rapidjson::StringBuffer text_buffer;
  auto migration = read_migration(document, "definition", text_buffer);
  if (!migration) return migration.error().with_context("recorded definition");
  return migration;
}

}  // namespace bootstate

// The plan: what a generation wants (plan.json, schema 1 — docs/DESIGN.md "Plan").
//
// A Plan is only ever constructed by parse_plan(), which validates it completely; code that
// holds a Plan may rely on every invariant listed here (unique ids, known phases and kinds,
// `after` naming existing ids without cycles, absolute command paths, kinds in phases where
// they can run).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// The three fixed points of a boot at which `bootstate run --phase P` advances the machine.
// The numeric order is the order in which they run during one boot.
enum class Phase : std::uint8_t { InitrdPreMount = 0, PreSwitchRoot = 1, PostActivation = 2 };
inline constexpr Phase kAllPhases[] = {Phase::InitrdPreMount, Phase::PreSwitchRoot,
                                       Phase::PostActivation};
std::string_view to_string(Phase phase);
std::optional<Phase> parse_phase(std::string_view text);
// The root file system is mounted (at /sysroot or /) in this phase: backups can be taken.
bool root_mounted(Phase phase);

enum class Policy : std::uint8_t { Required, Recommended, Optional };
std::string_view to_string(Policy policy);
std::optional<Policy> parse_policy(std::string_view text);

enum class StepKind : std::uint8_t { Command, Storage, Firmware };
std::string_view to_string(StepKind kind);
std::optional<StepKind> parse_step_kind(std::string_view text);

// kind "command": executed directly with execve, never through a shell.
struct CommandSpec {
  std::vector<std::string> argv;                   // argv[0] is an absolute path
  std::vector<std::string> check;                  // optional; exit 0 = already applied
  std::map<std::string, std::string> environment;  // added to the clean environment
  // Who the command runs as (docs/DESIGN.md "Steps as a user"): a name or a number each, empty
  // = root. Names are resolved in stage 2 only; initrd phases take numbers (validated).
  std::string user;
  std::string group;
};

// kind "storage": partition-table operations (issue #5 documents each field).
enum class StorageOpKind : std::uint8_t {
  GrowPartition,
  AddPartition,
  SetPartitionName,
  SetPartitionType,
  SetPartitionAttrs,
  Require,
};
std::string_view to_string(StorageOpKind kind);
std::optional<StorageOpKind> parse_storage_op_kind(std::string_view text);

struct StorageOperation {
  StorageOpKind op = StorageOpKind::Require;
  std::string disk;                // grow/add/set-*: a path (re-rooted under --root)
  std::string partition;           // grow/set-*: "PARTLABEL=…", "PARTUUID=…" or a number
  std::string size;                // grow/add: "max" or "512M", "20G" (powers of 1024)
  std::string name;                // add, set-partition-name
  std::string type;                // add, set-partition-type: a short name or a GPT type GUID
  std::string uuid;                // add (optional), require (optional)
  std::vector<std::string> attrs;  // set-partition-attrs: bit names or numbers
  std::string device;              // require: the device to probe
  std::string fstype;              // require (optional)
  std::string label;               // require (optional)
  std::string min_size;            // require (optional)
  bool allow_destroy = false;      // grow/add may cover space holding a known signature
};

// kind "firmware": the device must run `version` afterwards (issue #6).
struct FirmwareSpec {
  std::string device;   // fwupd device id or a GUID the device has
  std::string cabinet;  // absolute path of the .cab
  std::string version;  // the version that must be running afterwards
  bool allow_older = false;
  bool allow_reinstall = false;
};

struct Step {
  std::string id;
  Phase phase = Phase::PostActivation;
  StepKind kind = StepKind::Command;
  std::uint32_t timeout_seconds = 600;    // default when the plan omits `timeout`
  bool reboot = false;                    // reboot after this step before the next one runs
  bool idempotent = false;                // safe to run again after an interruption
  std::string preview;                    // what the step does, in the author's words
  CommandSpec command;                    // kind == Command
  std::vector<StorageOperation> storage;  // kind == Storage
  FirmwareSpec firmware;                  // kind == Firmware
};

struct CheckResolution;

struct Migration {
  std::string id;
  std::string description;
  Policy policy = Policy::Required;
  std::vector<std::string> after;   // ids this migration must follow
  std::vector<std::string> backup;  // absolute paths snapshotted before the first step
  std::vector<Step> steps;
  std::vector<Step> undo;
  bool keep = false;  // effect is harmless to older generations: kept, not undone, when stale
  // The canonical JSON text of this migration's definition, as recorded in the state so its
  // undo stays available after the generation that introduced it is gone.
  std::string definition_json;
  // Digest of definition_json: an applied migration whose definition changed is reported.
  std::string digest;
  // Resolution templates the items of this migration's running steps may offer (issue #15,
  // "generate new choices during execution"; docs/DESIGN.md "Items reported by a running
  // step"). A chosen one runs as migration "MIGRATION.RESOLUTION" before this migration's steps
  // are retried. Not part of definition_json or digest: they are the plan's answers to what
  // the steps may find, not the migration's effect (changing them is not a changed migration),
  // and a stale migration is only ever undone, never offered resolutions. Empty for most plans.
  std::vector<CheckResolution> resolutions;

  bool has_firmware_step() const;
  const CheckResolution* find_resolution(std::string_view resolution_id) const;
  // Kept when stale: `keep`, or firmware (machine state, never undone).
  bool kept_when_stale() const { return keep || has_firmware_step(); }
  // Can be undone when stale: explicit undo steps, else a backup to restore.
  bool undoable() const { return !undo.empty() || !backup.empty(); }
};

// A resolution a check (or a migration, for the items of its steps) offers: a migration
// template (docs/DESIGN.md "Checks and resolutions"). When the operator chooses it, it runs as
// migration `migration.id` = "CHECK.RESOLUTION" (or "MIGRATION.RESOLUTION"), policy required,
// with everything a migration has (order, backup, undo, power-cut safety).
struct CheckResolution {
  std::string id;           // the resolution's own id ("dump-restore")
  std::string description;  // for preview and status
  Migration migration;      // validated like a plan migration; id "OWNER.RESOLUTION"
};

// A check predicts whether the generation applies to the machine as it is: its command prints
// items as JSON lines (core/check_items.hpp). It runs in `phase` at boot, after that phase's
// undo work and before its migrations, and whenever `preview` or `choose` asks.
struct Check {
  std::string id;
  std::string description;
  Phase phase = Phase::PostActivation;
  std::vector<std::string> argv;        // argv[0] absolute; executed directly, no shell
  std::uint32_t timeout_seconds = 120;  // default when the plan omits `timeout`
  // Who the check runs as, like a command step's `user`/`group` (empty = root; numbers only in
  // the initrd phases).
  std::string user;
  std::string group;
  std::vector<CheckResolution> resolutions;

  const CheckResolution* find(std::string_view resolution_id) const;
};

struct Plan {
  int schema = 1;
  std::string generation;  // the toplevel store path this plan belongs to
  std::vector<Migration> migrations;
  std::vector<Check> checks;  // empty for most plans: then nothing about checks costs anything
  std::string digest;         // digest of the canonical `migrations` text (not `generation`)
  // Some migration has `resolutions` (then plan_with_choices has work for step items).
  bool has_migration_resolutions = false;

  // Index of each migration by id, filled by parse_plan (plans have up to thousands of
  // migrations, and the engine looks them up for every record).
  std::map<std::string, std::size_t, std::less<>> index;

  const Migration* find(std::string_view id) const;
  const Check* find_check(std::string_view id) const;
  // Checks or migration resolution templates: only then can a choice add migrations.
  bool offers_resolutions() const { return !checks.empty() || has_migration_resolutions; }
  // The resolution templates of an item's source: check "CHECK", or the migration of a step
  // "MIGRATION/STEP" (core/step_items.hpp); nullptr when the plan has no such source.
  const std::vector<CheckResolution>* resolutions_of(std::string_view source) const;
};

// The migration id a chosen resolution runs as: "CHECK.RESOLUTION" for a check's item,
// "MIGRATION.RESOLUTION" for the item of a step "MIGRATION/STEP" (or "MIGRATION/undo/STEP").
std::string resolution_migration_id(std::string_view source, std::string_view resolution);
// The migration a step source "MIGRATION/STEP" belongs to; empty for a check's id.
std::string_view source_migration(std::string_view source);

// Ids of migrations, steps, checks, resolutions and items: [a-z0-9][a-z0-9._-]{0,63}.
bool valid_id(std::string_view id);

// Plan positions in execution order: `after` first, otherwise plan order (of the migrations
// that may run next, the first in the plan). `plan` has no cycle and every `after` id exists
// (check_migration_graph). O((migrations + afters) log migrations).
std::vector<std::size_t> migration_order(const Plan& plan);

// By plan position: the positions of the migrations whose `after` names it (ids the plan index
// does not have are ignored). O(migrations + afters).
std::vector<std::vector<std::size_t>> followers_of(const Plan& plan);

// By plan position: `start` and every migration that runs after it, directly or through others
// (`after` ids the plan index does not have are ignored). O(migrations + afters). A migration
// that runs after its chosen resolution: that resolution may follow none of these (a cycle).
std::vector<bool> start_and_followers(const Plan& plan, std::size_t start);

// Parses and validates plan.json text completely. `source` names the file in messages.
// Every error is ErrorCode::InvalidInput and names the JSON path of the offending field:
//   "plan.json: migrations[2].steps[0].phase: unknown phase \"pre-mount\"".
Expected<Plan> parse_plan(std::string_view json_text, std::string_view source);
// What a parse keeps of each plan migration's definition text (Migration::definition_json).
// Drop: it is digested and let go, left empty, for a plan that is only shown (`status`): at 1,000
// migrations the texts are 340 KB, a fifth of the plan. A plan without them must not be run for
// real (what a run records is that text, for undo); status only simulates the boots ahead, whose
// records it never writes (its view of the store refuses writes, cli/state_view.cpp).
enum class DefinitionTexts { Keep, Drop };
// The same, freeing the text as soon as it is parsed (a plan of 1,000 migrations is 300 KB).
Expected<Plan> parse_owned_plan(std::string&& json_text, std::string_view source,
                                DefinitionTexts texts = DefinitionTexts::Keep);

// Parses one recorded migration definition (Migration::definition_json) back, validated the
// same way (its `after` ids are not checked: the plan they referred to may be gone).
Expected<Migration> parse_migration_definition(std::string_view json_text);

// 64-bit FNV-1a of `text`, as 16 hex digits. Change detection only, not security: the plan
// comes from the system closure, which is already trusted.
std::string text_digest(std::string_view text);

// text_digest of the concatenation of every add()ed text, without making the concatenation (the
// plan digest covers a megabyte with 1,000 migrations).
class TextDigest {
 public:
  void add(std::string_view text);
  // add(text) to this digest and to `other` in one pass: FNV-1a is a chain of multiplications
  // a byte long, and two independent chains run side by side in the time of one (a plan's
  // definitions are digested alone and as part of the plan: 0.4 ms of `status` at 1,000).
  void add_also_to(std::string_view text, TextDigest& other);
  std::string hex() const;

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
};

}  // namespace bootstate

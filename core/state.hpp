// The state: what this machine has done (docs/DESIGN.md "State"). Persisted by the store as
// the payload of a slot; every field below is persisted, and its comment says why it exists.
//
// Compatibility rule: an older bootstate (a rolled-back generation) reads a payload written by
// a newer one. So fields are only ever added, never reused with a new meaning, and readers
// ignore fields they do not know (see state_codec.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/plan.hpp"

namespace bootstate {

enum class StepState : std::uint8_t { Pending, Running, Done, Failed, Skipped };
std::string_view to_string(StepState state);
std::optional<StepState> parse_step_state(std::string_view text);

enum class MigrationState : std::uint8_t { Pending, Running, Applied, Failed, Declined, Undone };
std::string_view to_string(MigrationState state);
std::optional<MigrationState> parse_migration_state(std::string_view text);

enum class AttemptState : std::uint8_t { InProgress, Complete, Failed, Abandoned };
std::string_view to_string(AttemptState state);
std::optional<AttemptState> parse_attempt_state(std::string_view text);

// An operator's durable word on a migration (`bootstate accept|decline ID`).
enum class OperatorDecision : std::uint8_t { None, Accepted, Declined };
std::string_view to_string(OperatorDecision decision);
std::optional<OperatorDecision> parse_operator_decision(std::string_view text);

struct StepRecord {
  std::string id;
  StepState state = StepState::Pending;
  std::uint32_t attempts = 0;      // how many times it was started (shown by status)
  int exit_status = -1;            // last exit status of a command step, -1 when none
  std::string message;             // last outcome in words ("exit status 3", "timed out after 60s")
  std::int64_t started_usec = 0;   // CLOCK_REALTIME µs of the last start, 0 when never
  std::int64_t finished_usec = 0;  // CLOCK_REALTIME µs of the last end, 0 when not ended
  std::string boot_id;             // boot in which it was last started: `running` from another boot
                                   // means it was interrupted (semantics 3)
  bool awaiting_reboot = false;    // started work that completes across a reboot (firmware):
                                   // the next boot verifies instead of treating it as interrupted
  std::string undo_record;         // executor data needed to undo the step (e.g. a partition's old
                                   // name), opaque JSON; empty when none

  bool operator==(const StepRecord&) const = default;
};

struct MigrationRecord {
  std::string id;
  MigrationState state = MigrationState::Pending;
  Policy policy = Policy::Required;
  OperatorDecision decision = OperatorDecision::None;
  std::string digest;           // digest of the definition that was (partly) applied
  std::string definition_json;  // that definition, so undo works after its plan is gone
  std::string generation;       // generation whose plan introduced it
  std::uint64_t attempt = 0;    // attempt number that last worked on it
  bool backup_taken = false;    // the backup snapshot exists and is complete
  std::vector<StepRecord> steps;
  std::vector<StepRecord> undo_steps;  // progress of undo when it is being undone
  std::string message;                 // why it is failed/blocked, in words

  // Some step started: the migration has an effect on the machine that undo must revert.
  bool touched() const;

  // Every field: the store re-encodes a record only when it differs (core/state_layout.hpp).
  bool operator==(const MigrationRecord&) const = default;
};

struct Attempt {
  std::uint64_t number = 0;  // increasing; names the attempt in history and env
  std::string generation;    // target generation (toplevel path)
  std::string plan_digest;   // digest of the plan being applied
  AttemptState state = AttemptState::InProgress;
  std::string reason;                        // why it ended failed/abandoned, in words
  std::vector<std::string> boot_ids;         // boots that worked on this attempt, oldest first
  std::uint32_t boots_without_progress = 0;  // for the loop breaker (semantics 6)
  std::string entry;  // boot entry id the attempt was booted from, when known
  std::int64_t started_usec = 0;
  std::int64_t finished_usec = 0;
};

// An item a check (or a step, through $BOOTSTATE_ITEMS) reported for a generation, as last
// reported (docs/DESIGN.md "Checks and resolutions"). It carries its resolutions' descriptions:
// `status` shows it after a fallback, when the booted plan no longer has its check. Issue #15.
struct ItemResolutionRecord {
  std::string id;
  std::string description;
};
struct ItemRecord {
  std::string id;
  std::string check;     // the check that reported it; "MIGRATION/STEP" for a step's item
  std::string severity;  // error, warning, recommendation (an unknown word reads as error)
  std::string message;
  std::vector<ItemResolutionRecord> resolutions;
  std::string default_resolution;
  std::string generation;     // the generation whose plan has the check
  std::uint64_t attempt = 0;  // the attempt in which it was last reported, 0 for none
  std::int64_t reported_usec = 0;
};

// The operator's durable choice (`bootstate choose ITEM RESOLUTION`): resolution `resolution`
// of check `check` runs as migration "CHECK.RESOLUTION" in the attempts of `generation` (whose
// plan has that check and resolution). Issue #15.
struct ChoiceRecord {
  std::string item;
  std::string check;
  std::string resolution;
  std::int64_t chosen_usec = 0;
  std::string generation;
};

// Where State::find looks first (not persisted): the position of each record id, built on the
// first find and extended as records are appended. A copy starts empty (copying it would cost
// what it saves). The phase runner asks for a migration's record several times per step: a
// scan of every record each time made `status` with thousands of pending migrations quadratic
// (issue #17).
class RecordIndex {
 public:
  RecordIndex() = default;
  RecordIndex(const RecordIndex&) {}
  RecordIndex& operator=(const RecordIndex&) {
    clear();
    return *this;
  }
  RecordIndex(RecordIndex&&) noexcept = default;
  RecordIndex& operator=(RecordIndex&&) noexcept = default;
  ~RecordIndex() = default;

  // The position of the first record with `id`, or npos when there is none.
  std::size_t find(const std::vector<struct MigrationRecord>& records, std::string_view id);

 private:
  void clear();
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> first_;
  const MigrationRecord* data_ = nullptr;  // records.data() when built
  std::size_t covered_ = 0;                // records indexed: [0, covered_)
  bool usable_ = false;                    // built, and no id seen twice
};

struct State {
  std::optional<Attempt> attempt;           // the current (or last) attempt
  std::vector<MigrationRecord> migrations;  // every migration ever touched and not forgotten
  std::string last_good_generation;
  std::string last_good_entry;
  std::vector<Attempt> history;  // closed attempts, oldest first, bounded (kHistoryLimit)
  std::uint64_t next_attempt_number = 1;
  // CLOCK_REALTIME µs when bootstate started a fresh store because the old one was lost (no
  // usable slot: moved aside); 0 when never. From then on a step that is neither idempotent nor
  // has a check and has no record is held until `bootstate accept ID`: the store cannot tell
  // whether it ran before the loss (docs/DESIGN.md "Nothing lost"). Added in issue #13; older
  // readers ignore it.
  std::int64_t store_reset_usec = 0;
  // Items reported by checks and steps, bounded (kItemLimit), and the operator's choices.
  // Added in issue #15; older readers ignore them.
  std::vector<ItemRecord> items;
  std::vector<ChoiceRecord> choices;

  // The first record with `id`, or nullptr.
  MigrationRecord* find(std::string_view id);
  const MigrationRecord* find(std::string_view id) const;

  mutable RecordIndex record_index;  // not persisted: a cache of find()
};

inline constexpr std::size_t kHistoryLimit = 64;
inline constexpr std::size_t kItemLimit = 256;

}  // namespace bootstate

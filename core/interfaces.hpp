// Every side effect bootstate has goes through one of these small interfaces. The real
// implementations live at the edges (bootloader/, initrd/, stage2/, firmware/); tests use the
// strict, synchronous fakes in tests/support/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/plan.hpp"
#include "core/state.hpp"

namespace bootstate {

// ---------------------------------------------------------------------------------------------
// Boot loader (systemd-boot in bootloader/).

enum class BootCounting : std::uint8_t {
  Active,      // the booted entry carries a counter (NAME+LEFT[-DONE].conf)
  Off,         // booted by systemd-boot, but the entry has no counter
  Impossible,  // not booted by systemd-boot (no loader EFI variables), kexec, container
};
std::string_view to_string(BootCounting counting);

struct BootedEntry {
  std::string id;  // entry id without counter and suffix ("nixos-abc123"); empty if unknown
  BootCounting counting = BootCounting::Impossible;
  int tries_left = -1;  // counter of the booted entry file as it is now, -1 without counting
  int tries_done = -1;
  std::string why;  // for Off/Impossible: why, in words ("no LoaderEntrySelected variable")
};

class BootLoader {
 public:
  virtual ~BootLoader() = default;
  // The entry this boot was started from and its boot-counting state.
  virtual Expected<BootedEntry> booted_entry() = 0;
  // The entry id whose `options` line has init=GENERATION/init, if one exists.
  virtual Expected<std::optional<std::string>> entry_for_generation(
      std::string_view generation) = 0;
  // Booted entry → NAME+0-DONE: the next boot does not pick it while another entry is good.
  virtual Expected<void> mark_bad() = 0;
  // Booted entry → NAME+TRIES-0: a boot that made progress gives the attempt its tries back.
  virtual Expected<void> rearm() = 0;
  // Booted entry → NAME (no counter). Already good is success.
  virtual Expected<void> mark_good() = 0;
  // LoaderEntryOneShot = entry_id: the next boot (only) starts that entry.
  virtual Expected<void> set_one_shot(std::string_view entry_id) = 0;
  // Entries of `generation` named bad (NAME+0-DONE) → NAME+TRIES-0, so the boot loader tries
  // that generation again (operator `retry`); returns the new file names, empty when none was
  // bad. Loaders that cannot (preview's simulation) say so.
  virtual Expected<std::vector<std::string>> rearm_generation(std::string_view generation) {
    return make_error(ErrorCode::Unsupported, "this boot loader cannot re-arm the entry of {}",
                      generation);
  }
};

// ---------------------------------------------------------------------------------------------
// Facts about the running boot (read by the edge from /proc and efivars, given to the engine).

struct BootFacts {
  std::string boot_id;            // /proc/sys/kernel/random/boot_id
  std::string booted_generation;  // toplevel of init= on /proc/cmdline, empty when none
  std::int64_t now_usec = 0;      // CLOCK_REALTIME
  // Where /run/current-system points in stage 2 (post-activation), empty when unknown or not
  // read. It differs from the booted generation after `nixos-rebuild switch|test`: the run is
  // then a *switch attempt* for it (docs/DESIGN.md "A live switch"): no boot counting, no
  // reboot, and a failure undoes what it did.
  // (Default-initialized: aggregate initializations written before it need not name it.)
  std::string current_generation{};

  bool switch_attempt() const {
    return !current_generation.empty() && current_generation != booted_generation;
  }
  // The generation this run works for: the switched-to one, else the booted one.
  const std::string& target_generation() const {
    return switch_attempt() ? current_generation : booted_generation;
  }
};

// ---------------------------------------------------------------------------------------------
// Step execution.

struct StepContext {
  Phase phase = Phase::PostActivation;
  const Migration* migration = nullptr;
  const Step* step = nullptr;
  std::uint64_t attempt = 0;
  std::string generation;  // BOOTSTATE_GENERATION: the attempt's target generation
  std::string root;        // BOOTSTATE_ROOT: --root DIR, "/" otherwise
  std::string work_dir;    // per-step work directory (exists, writable)
  std::string log_path;    // bounded per-step log file
  // The step's persisted record (undo_record, attempts, awaiting_reboot). For revert() it is the
  // record of the forward step being reverted, whose undo_record says what to put back.
  const StepRecord* record = nullptr;
};

struct StepOutcome {
  bool ok = false;
  int exit_status = -1;
  std::string message;           // in words, shown by status
  bool awaiting_reboot = false;  // started; completes after a reboot (firmware)
  std::string undo_record;       // to persist with the step (storage: old values)
  // What the step wrote to the file named by $BOOTSTATE_ITEMS (core/step_items.hpp decides what
  // it means), and why that file could not be read (empty when it was read or was not there).
  std::string reported_items;
  std::string reported_items_error;
};

struct StepPreview {
  std::vector<std::string> lines;  // one line per effect, for people
  std::string detail_json;    // kind-specific data for `preview --json` (a JSON object), or empty
  bool irreversible = false;  // cannot be undone (grow-partition, firmware)
  bool needs_reboot = false;  // completes only after a reboot (firmware that says so)
  std::string blocker;        // non-empty: the step cannot run as planned, and why
};

enum class CheckResult : std::uint8_t {
  Applied,     // the step's effect is in place (check exited 0)
  NotApplied,  // it is not (check exited non-zero)
  Unknown,     // the step has no way to tell
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual StepOutcome run(const StepContext& context) = 0;
  // Whether the effect of an interrupted step is in place (semantics 3).
  virtual CheckResult check(const StepContext& context) = 0;
  // What the interrupted run reported before the cut ($BOOTSTATE_ITEMS: reported_items,
  // reported_items_error), read when its check says the effect is in place: a run that reported
  // an error item failed, power cut or not. Default: nothing reported.
  virtual StepOutcome interrupted_report(const StepContext& /*context*/) { return {}; }
  // Reverts a step of a stale migration by itself (storage: delete an added partition,
  // restore an old name). Kinds that cannot revert themselves return Unsupported.
  virtual StepOutcome revert(const StepContext& context) = 0;
  // What running the step would do, for `preview`. Must not change anything.
  virtual StepPreview describe(const StepContext& context) = 0;
};

// ---------------------------------------------------------------------------------------------
// Child processes (stage2/process_runner): command steps, checks, the firmware helper.

// Who a child runs as, resolved (stage2/account.hpp): set in the child before exec, in the
// order setgroups, setgid, setuid.
struct ProcessIdentity {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> groups;  // supplementary groups (empty: none, root's are dropped)
};

struct ProcessSpec {
  std::vector<std::string> argv;         // argv[0] absolute; executed with execve, no shell
  std::vector<std::string> environment;  // the complete environment, "KEY=VALUE"
  std::string work_dir;                  // chdir here before exec
  std::uint32_t timeout_seconds = 0;     // 0 = none; on expiry the whole process group is killed
  std::string log_path;                  // stdout+stderr appended here (bounded), empty = not kept
  std::uint64_t log_limit_bytes = 1 << 20;
  bool capture_stdout = false;     // keep stdout in ProcessResult::stdout_text instead of the log
  std::string journal_identifier;  // SYSLOG_IDENTIFIER for output lines sent to the journal,
                                   // empty = output not sent to the journal
  std::optional<ProcessIdentity> identity;  // nullopt: bootstate's own (root)
};

struct ProcessResult {
  bool started = false;     // false: exec failed (message says why)
  int exit_status = -1;     // exit code when it exited
  int signal = 0;           // terminating signal, 0 when it exited
  bool timed_out = false;   // killed because timeout_seconds passed
  std::string stdout_text;  // when capture_stdout
  std::string message;      // "exit status 3", "killed by signal 9", "timed out after 60 s"
  bool succeeded() const { return started && !timed_out && signal == 0 && exit_status == 0; }
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  virtual ProcessResult run(const ProcessSpec& spec) = 0;
};

// ---------------------------------------------------------------------------------------------
// Backups of a migration's `backup` paths (stage2/backup).

class BackupStore {
 public:
  virtual ~BackupStore() = default;
  // Copies `paths` (absolute, under `root`) into the snapshot of `migration_id`, replacing any
  // incomplete earlier snapshot. Owners, modes, xattrs, hard links and symlinks are preserved.
  virtual Expected<void> snapshot(std::string_view migration_id,
                                  const std::vector<std::string>& paths) = 0;
  // Puts every snapshotted path back as it was (paths absent at snapshot time are removed).
  // What is there now and differs from the snapshot is kept, not destroyed: it is moved under
  // the displaced directory of `attempt` (DESIGN.md "Nothing lost"). Returns where each
  // displaced item went, for the journal.
  virtual Expected<std::vector<std::string>> restore(std::string_view migration_id,
                                                     std::uint64_t attempt) = 0;
  // Deletes the snapshot. Missing is success.
  virtual Expected<void> discard(std::string_view migration_id) = 0;
};

// ---------------------------------------------------------------------------------------------
// Raw slot storage for the state store (files on the ESP, or memory in tests).

// A run of bytes of a slot, in whole pages but the last (SlotFrame, SlotFiles).
struct PageRun {
  std::size_t offset = 0;
  std::size_t size = 0;
};

class SlotStorage {
 public:
  virtual ~SlotStorage() = default;
  // One slot read front to back in pieces. Why: a load that parses the newest slot as it reads
  // it and only checksums the older one never holds a slot whole; at 1,000 migrations a slot is
  // 1.8 MB, and its buffer alone was 440 page faults, a sixth of `status`'s time
  // (docs/PERFORMANCE.md "Session 13").
  class Reader {
   public:
    virtual ~Reader() = default;
    // The next bytes, at most `into.size()` of them; 0 at the end of the slot.
    virtual Expected<std::size_t> read(std::span<char> into) = 0;
  };
  // A reader of slot 0 or 1; nullptr when the slot does not exist. The default reads the
  // slot whole (read()) and hands it out.
  virtual Expected<std::unique_ptr<Reader>> open_reader(int slot);
  // Contents of slot 0 or 1; nullopt when the slot file does not exist.
  virtual Expected<std::optional<std::string>> read(int slot) = 0;
  // The same into `bytes`, whose buffer a storage may reuse (false: the slot does not exist).
  // Why: a load reads the older slot to check it and then the newest one to parse it; into one
  // buffer, the second read touches no new memory (megabytes of page faults at 1,000
  // migrations).
  virtual Expected<bool> read_into(int slot, std::string& bytes) {
    auto whole = read(slot);
    if (!whole) return whole.error();
    if (!whole->has_value()) return false;
    bytes = std::move(**whole);
    return true;
  }
  // How many bytes a write of a `frame_bytes` frame to `slot` should fill: the store pads the
  // payload up to it, so a storage that keeps slots preallocated (SlotFiles) never needs new
  // blocks for a commit that fits. The default is no padding.
  virtual std::size_t size_to_write(int slot, std::size_t frame_bytes) {
    (void)slot;
    return frame_bytes;
  }
  // Overwrites slot 0 or 1 in place with `bytes` and makes it durable (one fsync/fdatasync).
  virtual Expected<void> write(int slot, std::string_view bytes) = 0;
  // The same, told that `bytes` differ only in `changed` from what this storage's last
  // successful write of `slot` put there, and that no one wrote the slot since (the store lock
  // is held from that write to this one). Why: finding the changed pages by reading megabytes
  // back costs what a commit should not (issue #17 item 2). A storage that cannot vouch for the
  // slot (it has not written it, a write failed, its size changed) writes as write() does; the
  // default always does.
  virtual Expected<void> write_changed(int slot, std::string_view bytes,
                                       const std::vector<PageRun>& changed) {
    (void)changed;
    return write(slot, bytes);
  }
  // Moves both slots aside (`.broken`) so a fresh store starts; keeps them for inspection.
  virtual Expected<void> move_aside() = 0;
  // Slots moved aside earlier are still there (`.broken`): a store with no slot but these was
  // lost (a run moved them aside and did not get to commit), it was not never used.
  virtual bool has_moved_aside() const { return false; }
  // Where the store lives, for messages.
  virtual std::string describe() const = 0;

  // The idle certificate (core/store_idle.hpp) and the slot heads it is checked against. The
  // defaults keep no certificate: a storage without one always takes the full parse.
  // The first `bytes` bytes of slot 0 or 1 (fewer when it is shorter); nullopt when missing.
  virtual Expected<std::optional<std::string>> read_head(int slot, std::size_t bytes) {
    auto whole = read(slot);
    if (whole && whole->has_value() && (*whole)->size() > bytes) (*whole)->resize(bytes);
    return whole;
  }
  // The certificate's bytes; nullopt when there is none.
  virtual Expected<std::optional<std::string>> read_idle_certificate() {
    return std::optional<std::string>();
  }
  // Replaces the certificate with `bytes` and makes it durable (one fdatasync).
  virtual Expected<void> write_idle_certificate(std::string_view bytes) {
    (void)bytes;
    return {};
  }
};

// The default reader: a slot read whole, handed out in pieces.
inline Expected<std::unique_ptr<SlotStorage::Reader>> SlotStorage::open_reader(int slot) {
  class WholeSlot final : public Reader {
   public:
    explicit WholeSlot(std::string bytes) : bytes_(std::move(bytes)) {}
    Expected<std::size_t> read(std::span<char> into) override {
      const std::size_t count = std::min(into.size(), bytes_.size() - offset_);
      std::copy_n(bytes_.data() + offset_, count, into.data());
      offset_ += count;
      return count;
    }

   private:
    std::string bytes_;
    std::size_t offset_ = 0;
  };
  auto whole = read(slot);
  if (!whole) return whole.error();
  if (!whole->has_value()) return std::unique_ptr<Reader>();
  return std::unique_ptr<Reader>(std::make_unique<WholeSlot>(std::move(**whole)));
}

}  // namespace bootstate

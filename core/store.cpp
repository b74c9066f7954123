// Which slot to trust is decided by a pure function over the raw slot bytes (decide_load); load()
// only reads the slots and carries out the decision (moving slots aside when it says so).
#include "core/store.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <optional>
#include <utility>

#include "core/crc32c.hpp"
#include "core/slot_stream.hpp"
#include "core/state_codec.hpp"
#include "core/state_fast_decode.hpp"

namespace bootstate {
namespace {

using RawSlot = Expected<std::optional<std::string>>;

enum class Verdict {
  Use,        // slot `slot` holds the newest valid state
  Fresh,      // no slot exists: first use of this ESP
  MoveAside,  // slots exist, none is usable: keep them for inspection and start over
  Fail,       // stop: nothing may be written (newer format, or a slot we could not even read)
};

struct LoadDecision {
  Verdict verdict = Verdict::Fresh;
  int slot = -1;
  std::uint64_t sequence = 0;
  State state;
  Error error;
  std::vector<std::string> warnings;
};

// A slot whose frame (magic, length, checksum) is intact, newest first.
struct Candidate {
  int slot = 0;
  SlotContents contents;
};

std::string ignored_warning(int slot, const std::string& where, const Error& error, LoadMode mode) {
  return mode == LoadMode::ReadOnly
             ? fmt::format("state slot {} in {} is unusable ({}); `bootstate run` will ignore it",
                           slot, where, error.message)
             : fmt::format("state slot {} in {} is unusable and was ignored: {}", slot, where,
                           error.message);
}

// Takes the slots' bytes: the chosen payload is parsed in their buffer (no copy of megabytes).
LoadDecision decide_load(std::array<RawSlot, 2> raw, const std::string& where, LoadMode mode) {
  LoadDecision decision;
  std::vector<Candidate> candidates;
  bool any_present = false;
  std::optional<Error> read_error;
  auto ignore = [&](int slot, const Error& error) {
    decision.warnings.push_back(ignored_warning(slot, where, error, mode));
  };

  for (int slot = 0; slot < 2; ++slot) {
    RawSlot& bytes = raw[static_cast<std::size_t>(slot)];
    if (!bytes) {
      // A slot that cannot be read is not known to be corrupt: it must not be moved aside.
      any_present = true;
      ignore(slot, bytes.error());
      if (!read_error) read_error = bytes.error();
      continue;
    }
    if (!bytes->has_value()) continue;
    any_present = true;
    auto frame = decode_owned_slot_frame(std::move(**bytes));
    if (!frame) {
      ignore(slot, frame.error());
      continue;
    }
    candidates.push_back({slot, std::move(*frame)});
  }
  if (candidates.size() == 2 && candidates[1].contents.sequence > candidates[0].contents.sequence) {
    std::swap(candidates[0], candidates[1]);
  }

  for (Candidate& candidate : candidates) {
    // Only the newest intact slot's format matters: an older slot of a newer format would mean a
    // newer bootstate wrote before this one did, and this one's write is what counts.
    if (auto format = check_slot_format(candidate.contents); !format) {
      if (format.error().code == ErrorCode::Unsupported) {
        decision.verdict = Verdict::Fail;
        decision.error = format.error().with_context(
            fmt::format("state slot {} in {} (sequence {})", candidate.slot, where,
                        candidate.contents.sequence));
        return decision;
      }
      ignore(candidate.slot, format.error());
      continue;
    }
    // The payload is not needed afterwards: parse it where it is.
    auto state = decode_state_in_place(candidate.contents.payload);
    if (!state && state.error().code == ErrorCode::Unsupported) {
      // An enum word this build does not know: a newer bootstate wrote the newest state.
      // Ignoring the slot would make the next commit overwrite it with older state (issue #13).
      decision.verdict = Verdict::Fail;
      decision.error = make_error(
          ErrorCode::Unsupported,
          "state slot {} in {} (sequence {}) was written by a newer bootstate: {}; this bootstate "
          "does not write over it (boot a generation with a bootstate that reads it)",
          candidate.slot, where, candidate.contents.sequence, state.error().message);
      return decision;
    }
    if (!state) {
      ignore(candidate.slot, state.error());
      continue;
    }
    decision.verdict = Verdict::Use;
    decision.slot = candidate.slot;
    decision.sequence = candidate.contents.sequence;
    decision.state = std::move(*state);
    return decision;
  }

  if (read_error) {
    decision.verdict = Verdict::Fail;
    decision.error = read_error->with_context(
        fmt::format("no usable state slot in {}, and one could not be read", where));
  } else if (any_present) {
    decision.verdict = Verdict::MoveAside;
  } else {
    decision.verdict = Verdict::Fresh;
  }
  return decision;
}

// The slot whose head has the higher sequence, or the only one there; nullopt when a head cannot
// be read or is damaged, or both say the same. `present`: which slots exist; `sequence`: what
// their heads say.
std::optional<int> newer_by_head(SlotStorage& storage, std::array<bool, 2>& present,
                                 std::array<std::uint64_t, 2>& sequence) {
  for (int slot = 0; slot < 2; ++slot) {
    auto head_bytes = storage.read_head(slot, kSlotHeaderSize);
    if (!head_bytes) return std::nullopt;
    present[static_cast<std::size_t>(slot)] = head_bytes->has_value();
    if (!head_bytes->has_value()) continue;
    const std::optional<std::uint64_t> head = slot_head_sequence(**head_bytes);
    if (!head) return std::nullopt;
    sequence[static_cast<std::size_t>(slot)] = *head;
  }
  if (!present[0] && !present[1]) return std::nullopt;
  if (!present[0] || !present[1]) return present[0] ? 0 : 1;
  if (sequence[0] == sequence[1]) return std::nullopt;
  return sequence[0] > sequence[1] ? 0 : 1;
}

// What is wrong with `slot`'s frame, read in pieces; nullopt when nothing (or it is gone).
std::optional<Error> frame_problem(SlotStorage& storage, int slot) {
  auto reader = storage.open_reader(slot);
  if (!reader) return reader.error();
  if (!*reader) return std::nullopt;  // gone since its head was read: nothing to report
  SlotStream stream(**reader);
  stream.skip_rest();
  if (auto frame = stream.frame(); !frame) return frame.error();
  return std::nullopt;
}

// Use of the newest slot, decided as it is read, when it is intact and the fast reader takes its
// payload; nullopt for anything else.
std::optional<LoadDecision> load_newest_as_read(SlotStorage& storage, const std::string& where,
                                                LoadMode mode) {
  std::array<bool, 2> present{};
  std::array<std::uint64_t, 2> sequence{};
  const std::optional<int> newer = newer_by_head(storage, present, sequence);
  if (!newer) return std::nullopt;
  auto reader = storage.open_reader(*newer);
  if (!reader || !*reader) return std::nullopt;
  SlotStream stream(**reader);
  std::optional<State> state;
  try {
    state = decode_state_fast(stream);
  } catch (const std::exception&) {  // no memory: the full decision says what it says of it
    return std::nullopt;
  }
  if (!state || !stream.rest_is_whitespace()) return std::nullopt;
  auto frame = stream.frame();
  // Rewritten since its head was read (a writer two commits on): the full decision, again.
  if (!frame || frame->format_version != kSlotFormatVersion ||
      frame->sequence != sequence[static_cast<std::size_t>(*newer)]) {
    return std::nullopt;
  }
  LoadDecision decision;
  decision.verdict = Verdict::Use;
  decision.slot = *newer;
  decision.sequence = frame->sequence;
  decision.state = std::move(*state);
  // The older slot decides nothing while the newest is usable, but a damaged one is reported
  // as the full decision reports it.
  const int older = 1 - *newer;
  if (present[static_cast<std::size_t>(older)]) {
    if (auto problem = frame_problem(storage, older)) {
      decision.warnings.push_back(ignored_warning(older, where, *problem, mode));
    }
  }
  return decision;
}

}  // namespace

StateStore::StateStore(SlotStorage& storage) : storage_(storage), frame_(kSlotHeaderSize) {}

Expected<LoadResult> StateStore::load(LoadMode mode) {
  const std::string where = storage_.describe();
  // The newest slot (by the sequence in its head) is parsed as it is read and the older one,
  // if any, only checksummed as it is read: no slot is held whole (interfaces.hpp
  // SlotStorage::Reader). The older slot decides nothing while the newest is usable
  // (decide_load takes the newest intact slot and never parses an older one). Anything else -
  // a torn or damaged newest slot, a newer format, a payload the fast reader leaves to the
  // document reader - takes the full decision below, which reads both whole and says why.
  LoadDecision decision;
  bool decided = false;
  if (auto streamed = load_newest_as_read(storage_, where, mode)) {
    decision = std::move(*streamed);
    decided = true;
  }
  if (!decided) {
    std::array<RawSlot, 2> raw{storage_.read(0), storage_.read(1)};
    decision = decide_load(std::move(raw), where, mode);
  }
  LoadResult result;
  result.warnings = std::move(decision.warnings);
  switch (decision.verdict) {
    case Verdict::Fail:
      return decision.error;
    case Verdict::MoveAside:
      if (mode == LoadMode::ReadOnly) {
        // status, preview and history never write: say what `run` will do.
        result.warnings.push_back(fmt::format(
            "no usable state slot in {}: `bootstate run` will move them aside (.broken) and "
            "start a fresh store; until then this shows an empty state",
            where));
        result.fresh = true;
        result.would_move_aside = true;
        break;
      }
      if (auto moved = storage_.move_aside(); !moved) {
        return moved.error().with_context(
            fmt::format("while moving the corrupt state in {} aside", where));
      }
      result.warnings.push_back(fmt::format(
          "no valid state slot in {}: the slots were moved aside (.broken) and a fresh state "
          "was started",
          where));
      result.fresh = true;
      result.moved_aside = true;
      result.lost = true;
      break;
    case Verdict::Fresh:
      result.fresh = true;
      if (storage_.has_moved_aside()) {
        result.lost = true;
        result.warnings.push_back(fmt::format(
            "no state slot in {}, but slots moved aside earlier are there (.broken): the state "
            "was lost, not never used",
            where));
      }
      break;
    case Verdict::Use:
      result.state = std::move(decision.state);
      result.sequence = decision.sequence;
      break;
  }
  loaded_ = mode == LoadMode::ForUpdate;
  // What this process wrote before is vouched for only while it held the lock since.
  slot_version_ = {};
  newest_slot_ = decision.verdict == Verdict::Use ? decision.slot : -1;
  sequence_ = result.sequence;
  return result;
}

Expected<void> StateStore::commit(const State& state) {
  if (!loaded_) {
    if (auto loaded = load(); !loaded) return loaded.error();
  }
  // The slot that does not hold the newest state: overwriting it cannot lose a commit.
  const int target = newest_slot_ == 0 ? 1 : 0;
  const std::uint64_t sequence = sequence_ + 1;
  // Laid out so that unchanged records keep their offsets (state_layout.hpp), in a frame kept
  // from commit to commit that knows which pages changed (slot_frame.hpp): neither the checksum
  // nor the write then goes over the unchanged megabytes.
  frame_.begin_version();
  const std::size_t end = layout_.encode(state, frame_, kSlotHeaderSize);
  // Padded to what the storage keeps allocated for the slot (SlotFiles: never less than the
  // file's size, so a commit on a full ESP needs no new block). The padding is JSON whitespace
  // inside the checksummed payload: every reader, older bootstates too, parses past it.
  const std::size_t size = std::max(storage_.size_to_write(target, end), end);
  // Only the padding the payload gave up is filled: the rest of the frame beyond the last
  // payload is still the last commit's padding (at 10,000 migrations megabytes of it).
  if (payload_end_ > end) frame_.fill(end, std::min(payload_end_, size) - end, ' ');
  frame_.resize(size, ' ');
  payload_end_ = end;
  std::string header = slot_header_fields(sequence, size - kSlotHeaderSize);
  append_slot_checksum(header, frame_.checksum(crc32c(header)));
  frame_.put(0, header);
  const std::uint64_t written_version = slot_version_[target];
  auto written =
      written_version == 0
          ? storage_.write(target, frame_.bytes())
          : storage_.write_changed(target, frame_.bytes(), frame_.changed_since(written_version));
  if (!written) {
    slot_version_[target] = 0;  // what the slot holds now is unknown
    return written.error().with_context(
        fmt::format("while committing state sequence {} to slot {} in {}", sequence, target,
                    storage_.describe()));
  }
  slot_version_[target] = frame_.version();
  newest_slot_ = target;
  sequence_ = sequence;
  return {};
}

}  // namespace bootstate

// The state payload read straight into a State, without a JSON document in between: what every
// load of a well-formed payload takes. The document reader in state_codec.cpp stays the
// authority: whatever this one does not accept exactly as that one would, it leaves to it.
//
// Why: a document of the state at 1,000 applied migrations is ~100,000 values built, copied
// from rapidjson's stack into its pool and then walked once. Skipping it made `status --json`
// ~5 ms faster there, a fifth of its time (docs/PERFORMANCE.md "Session 13").
#pragma once

#include <optional>

#include "core/state.hpp"

namespace bootstate {

// The State in `payload`, a JSON text ending at its first NUL. nullopt when anything is not
// the common case: a syntax error, a field of the wrong type, an enum word this build does not
// know, a required field missing or `payload_version` 0, a known field twice in one object. The
// caller then reads the payload with the document reader, which says what is wrong (and whose
// behaviour is the contract). Unknown fields are skipped, as that reader ignores them. The
// payload nests at most kMaxJsonDepth deep and its numbers stay within the limits of
// check_json_limits (json_fields.hpp), or it is left to the document reader too.
std::optional<State> decode_state_fast(const char* payload);

// The same as a slot is read (slot_stream.hpp), up to the end of the JSON text: the caller
// checks what follows it (SlotStream::rest_is_whitespace) and the slot's frame.
class SlotStream;
std::optional<State> decode_state_fast(SlotStream& payload);

}  // namespace bootstate

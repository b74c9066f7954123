// The vocabulary of storage operations: sizes, partition type names and GPT attribute names.
// Everything here is pure (no device is touched), so the plan author's words can be checked
// and explained without a disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// A size as a plan writes it: digits with an optional K, M, G or T suffix (powers of 1024).
// "max" is returned as std::nullopt inside the Expected ("as large as the space allows");
// zero, overflow and other text are InvalidInput.
Expected<std::optional<std::uint64_t>> parse_size(std::string_view text);

// A size for people: "512 MiB", "1.5 GiB", "3 sectors" is never used — bytes in, text out.
std::string format_size(std::uint64_t bytes);

// A GPT partition type: a short name (linux, swap, esp, home, var, srv, tmp, root, usr,
// xbootldr, lvm, raid, bios-boot) or a type GUID in any case. Returns the GUID in upper
// case, as libfdisk prints it.
Expected<std::string> resolve_type(std::string_view text);

// An MBR (dos) partition type: a short name (linux, swap, esp, lvm, raid, and the GPT-only
// names home/var/srv/tmp/root/usr/xbootldr which all mean "Linux", 0x83) or a hex code
// ("83", "0x83"). A GUID is refused: dos tables have one-byte types.
Expected<unsigned> resolve_dos_type(std::string_view text);

// The short name for a GPT type GUID or a dos code when one exists, for previews.
std::optional<std::string_view> type_short_name(std::string_view guid);

// GPT attribute bits given by name or number ("required", "no-block-io", "legacy-boot",
// "grow-fs", "read-only", "hidden", "no-auto", or "0".."63"), OR-ed into one mask.
Expected<std::uint64_t> parse_gpt_attrs(const std::vector<std::string>& names);

// The names of the bits set in `attrs`, numbers for bits without a name ("legacy-boot,55").
std::string format_gpt_attrs(std::uint64_t attrs);

// Whether `text` looks like a GUID (8-4-4-4-12 hex digits).
bool is_guid_text(std::string_view text);

// Upper-case copy, for comparing GUIDs the way libfdisk prints them.
std::string upper_ascii(std::string_view text);

}  // namespace bootstate

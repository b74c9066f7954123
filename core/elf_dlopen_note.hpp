// Declares a library the program loads with dlopen (core/dynamic_library.hpp) in a `.note.dlopen`
// ELF note, systemd's "ELF dlopen metadata" (https://systemd.io/ELF_DLOPEN_METADATA/): owner
// "FDO", type 0x407c0c0a, payload a zero-terminated JSON array of objects with `feature`,
// `description`, `priority` and a `soname` list. The library is not DT_NEEDED, so without the note
// initrd builders (NixOS make-initrd-ng, mkosi, dracut) would not know to carry it: make-initrd-ng
// reads these notes and copies each soname it finds on the binary's RUNPATH (docs/NIXOS.md).
// tests/units/dlopen_notes.py reads them back from the installed binary.
//
// Usage, at namespace scope next to the dlopen call:
//   BOOTSTATE_ELF_NOTE_DLOPEN("fdisk", "partition tables of storage steps",
//                             BOOTSTATE_DLOPEN_RECOMMENDED, "libfdisk.so.1");
// Strings must not need JSON escaping (no quote, backslash or control character): the payload
// is pasted together by the preprocessor.
#pragma once

#include <cstdint>

#define BOOTSTATE_DLOPEN_REQUIRED "required"
#define BOOTSTATE_DLOPEN_RECOMMENDED "recommended"
#define BOOTSTATE_DLOPEN_SUGGESTED "suggested"

namespace bootstate::elf_note {
inline constexpr std::uint32_t kDlopenType = 0x407c0c0a;
inline constexpr char kDlopenOwner[] = "FDO";
}  // namespace bootstate::elf_note

// The ELF note layout (Elf_Nhdr, owner, payload), each part 4-byte aligned as the ELF gABI wants
// for notes in 64-bit objects too (what readelf, goblin and systemd's tools expect).
// `used` keeps the object although nothing refers to it; the section name starting with ".note"
// makes GCC emit it as SHT_NOTE, which the linker keeps under --gc-sections (checked by the test).
#define BOOTSTATE_ELF_NOTE_DLOPEN_JSON(json, variable)                         \
  [[gnu::used, gnu::section(".note.dlopen")]] alignas(4) static const struct { \
    struct {                                                                   \
      std::uint32_t n_namesz, n_descsz, n_type;                                \
    } header;                                                                  \
    char owner[sizeof(::bootstate::elf_note::kDlopenOwner)];                   \
    alignas(4) char payload[sizeof(json)];                                     \
  } variable = {{sizeof(::bootstate::elf_note::kDlopenOwner), sizeof(json),    \
                 ::bootstate::elf_note::kDlopenType},                          \
                "FDO",                                                         \
                json}

#define BOOTSTATE_ELF_NOTE_CONCAT2(a, b) a##b
#define BOOTSTATE_ELF_NOTE_CONCAT(a, b) BOOTSTATE_ELF_NOTE_CONCAT2(a, b)

// One library (one soname) per note: every dlopen of bootstate names exactly one soname.
#define BOOTSTATE_ELF_NOTE_DLOPEN(feature, description, priority, soname)                          \
  BOOTSTATE_ELF_NOTE_DLOPEN_JSON("[{\"feature\":\"" feature "\",\"description\":\"" description    \
                                 "\",\"priority\":\"" priority "\",\"soname\":[\"" soname "\"]}]", \
                                 BOOTSTATE_ELF_NOTE_CONCAT(bootstate_dlopen_note_, __COUNTER__))

// Just enough of the PE/COFF format to read a unified kernel image's sections (Boot Loader
// Specification Type #2 entries in $ESP/EFI/Linux, as systemd-stub/ukify and lanzaboote build
// them): the section table, and the text of the `.cmdline` section, which holds `init=` and so
// the generation the image boots. Debian has no C/C++ library that reads PE section tables
// (binutils' libbfd is not a stable library), so this is a small reader of our own: every
// offset and size is checked against the bytes actually there, nothing is trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

struct PeSection {
  std::string name;  // up to 8 bytes, NULs removed (".cmdline")
  std::uint32_t virtual_size = 0;
  std::uint32_t virtual_address = 0;
  std::uint32_t raw_size = 0;    // SizeOfRawData
  std::uint32_t raw_offset = 0;  // PointerToRawData (file offset)
};

// How many bytes of a file parse_pe_sections() may need at most: the DOS header's e_lfanew is
// accepted only below this, and the section table must end within it.
inline constexpr std::size_t kPeHeaderLimit = 1 << 20;

// The section table from the first bytes of a PE file (`head`: the file, or at least its first
// kPeHeaderLimit bytes). InvalidInput with the reason when it is not a PE image or the headers
// point outside `head`.
Expected<std::vector<PeSection>> parse_pe_sections(std::string_view head);

// Where the data of `section` is in the file: offset and length (the smaller of VirtualSize
// and SizeOfRawData: the raw size is padded to the file alignment, the virtual size is what
// the stub uses). InvalidInput when it lies beyond `file_size`.
struct PeSpan {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};
Expected<PeSpan> pe_section_span(const PeSection& section, std::uint64_t file_size);

// The kernel command line stored in a `.cmdline` section's bytes: up to the first NUL (the stub
// treats it as a C string), surrounding whitespace removed.
std::string pe_cmdline_text(std::string_view section_bytes);

// The largest .cmdline section bootstate reads (systemd-stub's command lines are a few KiB).
inline constexpr std::uint64_t kMaxCmdlineBytes = 1 << 16;

// Reads the `.cmdline` section of the UKI at `path` (the first one: a multi-profile UKI's
// base command line). nullopt when the image has no .cmdline section. InvalidInput when the
// file is not a PE image or its section is out of bounds; Io when it cannot be read.
Expected<std::optional<std::string>> read_uki_cmdline(const std::string& path);

}  // namespace bootstate

#include "bootloader/pe_sections.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "bootloader/unique_fd.hpp"

namespace bootstate {
namespace {

// Offsets from the PE/COFF specification.
constexpr std::size_t kDosLfanewOffset = 0x3c;
constexpr std::size_t kCoffHeaderSize = 20;  // after the 4-byte "PE\0\0" signature
constexpr std::size_t kSectionHeaderSize = 40;

std::uint32_t le16(std::string_view bytes, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
}

std::uint32_t le32(std::string_view bytes, std::size_t at) {
  return le16(bytes, at) | le16(bytes, at + 2) << 16;
}

Error not_pe(std::string_view why) {
  return make_error(ErrorCode::InvalidInput, "not a PE image: {}", why);
}

// Reads up to `length` bytes at `offset`; fewer only at the end of the file.
Expected<std::string> pread_all(int fd, std::uint64_t offset, std::size_t length,
                                const std::string& path) {
  std::string bytes(length, '\0');
  std::size_t have = 0;
  while (have < length) {
    const ssize_t got =
        ::pread(fd, bytes.data() + have, length - have, static_cast<off_t>(offset + have));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return make_error(ErrorCode::Io, "read {}: {}", path, errno_text(errno));
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  bytes.resize(have);
  return bytes;
}

}  // namespace

Expected<std::vector<PeSection>> parse_pe_sections(std::string_view head) {
  if (head.size() < kDosLfanewOffset + 4 || head.substr(0, 2) != "MZ") {
    return not_pe("no \"MZ\" DOS header");
  }
  const std::uint64_t pe_offset = le32(head, kDosLfanewOffset);
  if (pe_offset > kPeHeaderLimit || pe_offset + 4 + kCoffHeaderSize > head.size()) {
    return not_pe(fmt::format("PE header offset {} is beyond the file's first {} bytes", pe_offset,
                              head.size()));
  }
  if (head.substr(pe_offset, 4) != std::string_view("PE\0\0", 4)) {
    return not_pe(fmt::format("no \"PE\" signature at offset {}", pe_offset));
  }
  const std::size_t coff = pe_offset + 4;
  const std::uint32_t section_count = le16(head, coff + 2);
  const std::uint32_t optional_header_size = le16(head, coff + 16);
  const std::uint64_t table = coff + kCoffHeaderSize + optional_header_size;
  const std::uint64_t table_end =
      table + static_cast<std::uint64_t>(section_count) * kSectionHeaderSize;
  if (table_end > head.size()) {
    return not_pe(fmt::format("section table ({} sections at offset {}) ends beyond byte {}",
                              section_count, table, head.size()));
  }
  std::vector<PeSection> sections;
  sections.reserve(section_count);
  for (std::uint32_t i = 0; i < section_count; ++i) {
    const std::size_t at = table + static_cast<std::size_t>(i) * kSectionHeaderSize;
    PeSection section;
    std::string_view name = head.substr(at, 8);
    name = name.substr(0, name.find('\0'));
    section.name = std::string(name);
    section.virtual_size = le32(head, at + 8);
    section.virtual_address = le32(head, at + 12);
    section.raw_size = le32(head, at + 16);
    section.raw_offset = le32(head, at + 20);
    sections.push_back(std::move(section));
  }
  return sections;
}

Expected<PeSpan> pe_section_span(const PeSection& section, std::uint64_t file_size) {
  const std::uint64_t length = section.virtual_size != 0
                                   ? std::min(section.virtual_size, section.raw_size)
                                   : section.raw_size;
  const std::uint64_t end = static_cast<std::uint64_t>(section.raw_offset) + length;
  if (end > file_size) {
    return make_error(ErrorCode::InvalidInput,
                      "PE section \"{}\" (offset {}, {} bytes) ends beyond the file's {} bytes",
                      section.name, section.raw_offset, length, file_size);
  }
  return PeSpan{section.raw_offset, length};
}

std::string pe_cmdline_text(std::string_view section_bytes) {
  std::string_view text = section_bytes.substr(0, section_bytes.find('\0'));
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return "";
  text = text.substr(first);
  return std::string(text.substr(0, text.find_last_not_of(kSpace) + 1));
}

Expected<std::optional<std::string>> read_uki_cmdline(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) return make_error(ErrorCode::Io, "open {}: {}", path, errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) {
    return make_error(ErrorCode::Io, "stat {}: {}", path, errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::InvalidInput, "{}: not a regular file", path);
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  // Headers are normally in the first KiB (ukify, objcopy on the stub); UKIs are tens of MiB,
  // and the booted one is read in every phase. Read 4 KiB, and the whole header limit only
  // when the file is a DOS/PE image whose table reaches beyond that (not for any other file).
  constexpr std::uint64_t kFirstRead = 4 * 1024;
  auto head = pread_all(fd.get(), 0, std::min(file_size, kFirstRead), path);
  if (!head) return head.error();
  auto sections = parse_pe_sections(*head);
  if (!sections && file_size > kFirstRead && head->compare(0, 2, "MZ") == 0) {
    head = pread_all(fd.get(), 0, std::min<std::uint64_t>(file_size, kPeHeaderLimit), path);
    if (!head) return head.error();
    sections = parse_pe_sections(*head);
  }
  if (!sections) return sections.error().with_context(path);
  for (const PeSection& section : *sections) {
    if (section.name != ".cmdline") continue;
    auto span = pe_section_span(section, file_size);
    if (!span) return span.error().with_context(path);
    if (span->length > kMaxCmdlineBytes) {
      return make_error(ErrorCode::InvalidInput, "{}: .cmdline section of {} bytes (at most {})",
                        path, span->length, kMaxCmdlineBytes);
    }
    auto bytes = pread_all(fd.get(), span->offset, span->length, path);
    if (!bytes) return bytes.error();
    return std::optional<std::string>(pe_cmdline_text(*bytes));
  }
  return std::optional<std::string>();
}

}  // namespace bootstate

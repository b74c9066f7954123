// The PE section-table reader behind UKI entries: real images built with objcopy onto systemd's
// EFI stub, and hostile bytes (truncations at every offset, out-of-range headers and sections,
// random corruption) that must give an error or bounded sections, never a crash or a read past
// the bytes given.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <random>

#include "bootloader/pe_sections.hpp"
#include "tests/bootloader/tree.hpp"

namespace bootstate {

using test::Tree;

namespace {

void put16(std::string& bytes, std::size_t at, std::uint32_t value) {
  bytes[at] = static_cast<char>(value & 0xff);
  bytes[at + 1] = static_cast<char>((value >> 8) & 0xff);
}

void put32(std::string& bytes, std::size_t at, std::uint32_t value) {
  put16(bytes, at, value & 0xffff);
  put16(bytes, at + 2, value >> 16);
}

constexpr std::size_t kLfanew = 0x80;
constexpr std::size_t kOptionalHeader = 0xf0;  // PE32+
constexpr std::size_t kTable = kLfanew + 4 + 20 + kOptionalHeader;

// A minimal PE image: the headers, then each section's data at a 0x200-aligned offset with
// VirtualSize = data size and SizeOfRawData rounded up, as linkers and objcopy write them.
std::string make_pe(const std::vector<std::pair<std::string, std::string>>& sections,
                    std::size_t lfanew = kLfanew) {
  const std::size_t table = lfanew + 4 + 20 + kOptionalHeader;
  std::string bytes(table + 40 * sections.size(), '\0');
  bytes[0] = 'M';
  bytes[1] = 'Z';
  put32(bytes, 0x3c, static_cast<std::uint32_t>(lfanew));
  bytes.replace(lfanew, 4, std::string("PE\0\0", 4));
  put16(bytes, lfanew + 4, 0x8664);
  put16(bytes, lfanew + 6, static_cast<std::uint32_t>(sections.size()));
  put16(bytes, lfanew + 20, kOptionalHeader);
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const auto& [name, data] = sections[i];
    bytes.resize((bytes.size() + 0x1ff) & ~std::size_t{0x1ff}, '\0');
    const std::size_t header = table + 40 * i;
    bytes.replace(header, std::min<std::size_t>(name.size(), 8), name.substr(0, 8));
    const auto raw_size = static_cast<std::uint32_t>((data.size() + 0x1ff) & ~std::size_t{0x1ff});
    put32(bytes, header + 8, static_cast<std::uint32_t>(data.size()));
    put32(bytes, header + 12, static_cast<std::uint32_t>(0x20000 + 0x10000 * i));
    put32(bytes, header + 16, raw_size);
    put32(bytes, header + 20, static_cast<std::uint32_t>(bytes.size()));
    bytes += data;
    bytes.resize(bytes.size() + (raw_size - data.size()), '\0');
  }
  return bytes;
}

// Everything the reader reports must lie inside the bytes it was given, or be an error.
void check_bounded(std::string_view image) {
  auto sections = parse_pe_sections(image);
  if (!sections) {
    CHECK(sections.error().code == ErrorCode::InvalidInput);
    return;
  }
  for (const PeSection& section : *sections) {
    CHECK(section.name.size() <= 8);
    auto span = pe_section_span(section, image.size());
    if (span) CHECK(span->offset + span->length <= image.size());
  }
}

}  // namespace

TEST_CASE("pe sections: a well-formed image gives its sections and the .cmdline text") {
  const std::string image = make_pe({{".text", std::string(100, '\x90')},
                                     {".cmdline", "init=/nix/store/abc-system/init quiet\n"}});
  auto sections = parse_pe_sections(image);
  REQUIRE_MESSAGE(sections, sections.error().message);
  REQUIRE(sections->size() == 2);
  CHECK((*sections)[1].name == ".cmdline");
  auto span = pe_section_span((*sections)[1], image.size());
  REQUIRE(span);
  CHECK(span->length == 38);  // VirtualSize, not the padded raw size
  CHECK(pe_cmdline_text(image.substr(span->offset, span->length)) ==
        "init=/nix/store/abc-system/init quiet");
}

TEST_CASE("pe sections: the command line ends at the first NUL, whitespace trimmed") {
  CHECK(pe_cmdline_text(std::string("  init=/a/init\0init=/b/init", 27)) == "init=/a/init");
  CHECK(pe_cmdline_text("\n\t ") == "");
  CHECK(pe_cmdline_text("") == "");
}

TEST_CASE("pe sections: hostile headers are InvalidInput naming what is wrong") {
  const std::string good = make_pe({{".cmdline", "init=/x/init"}});
  auto error_of = [](std::string_view bytes) {
    auto parsed = parse_pe_sections(bytes);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == ErrorCode::InvalidInput);
    return parsed.error().message;
  };
  CHECK(error_of("").find("MZ") != std::string::npos);
  CHECK(error_of("ELF\x7f and more bytes than the dos header has, yes many more bytes....")
            .find("MZ") != std::string::npos);
  std::string bad = good;
  put32(bad, 0x3c, 0xffffffff);
  CHECK(error_of(bad).find("PE header offset") != std::string::npos);
  bad = good;
  put32(bad, 0x3c, static_cast<std::uint32_t>(good.size() - 10));
  CHECK(error_of(bad).find("PE header offset") != std::string::npos);
  bad = good;
  bad[kLfanew] = 'X';
  CHECK(error_of(bad).find("signature") != std::string::npos);
  bad = good;
  put16(bad, kLfanew + 6, 0xffff);
  CHECK(error_of(bad).find("section table") != std::string::npos);
  bad = good;
  put16(bad, kLfanew + 20, 0xffff);
  CHECK(error_of(bad).find("section table") != std::string::npos);
}

TEST_CASE("pe sections: a section beyond the file is refused, sizes near 2^32 do not wrap") {
  PeSection section{".cmdline", 0xffffffff, 0, 0xffffffff, 0xffffffff};
  auto span = pe_section_span(section, 1 << 20);
  REQUIRE_FALSE(span);
  CHECK(span.error().message.find(".cmdline") != std::string::npos);
  section = PeSection{".cmdline", 0, 0, 16, 100};
  CHECK(pe_section_span(section, 116)->length == 16);  // no VirtualSize: the raw size
  CHECK_FALSE(pe_section_span(section, 115));
}

TEST_CASE("pe sections: every truncation and random corruption stays in bounds") {
  const std::string good = make_pe({{".osrel", "ID=nixos\n"},
                                    {".cmdline", "init=/nix/store/abc/init"},
                                    {".linux", std::string(700, 'k')}});
  for (std::size_t length = 0; length <= good.size(); ++length) {
    check_bounded(std::string_view(good).substr(0, length));
  }
  std::mt19937 random(14);  // fixed seed: a failure reproduces
  for (int round = 0; round < 3000; ++round) {
    std::string mutated = good;
    const int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips; ++i) {
      // Mostly in the headers, where the offsets are.
      const std::size_t limit = random() % 4 == 0 ? mutated.size() : kTable + 3 * 40;
      mutated[random() % limit] = static_cast<char>(random());
    }
    check_bounded(mutated);
  }
}

TEST_CASE("read_uki_cmdline: a UKI built with objcopy on systemd's stub, and bad files") {
  Tree tree;
  std::string why;
  if (!tree.add_uki("boot/EFI/Linux/nixos-gen1.efi",
                    "init=/nix/store/abc-nixos-system/init "
                    "console=ttyS0\n",
                    why)) {
    WARN_MESSAGE(false, "skipped: " << why);
    return;
  }
  auto cmdline = read_uki_cmdline(tree.root() + "/boot/EFI/Linux/nixos-gen1.efi");
  REQUIRE_MESSAGE(cmdline, cmdline.error().message);
  CHECK(*cmdline == "init=/nix/store/abc-nixos-system/init console=ttyS0");

  // The bare stub has no .cmdline.
  auto stub = read_uki_cmdline("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
  REQUIRE(stub);
  CHECK_FALSE(stub->has_value());

  tree.write("boot/EFI/Linux/text.efi", "not a PE image\n");
  auto text = read_uki_cmdline(tree.root() + "/boot/EFI/Linux/text.efi");
  REQUIRE_FALSE(text);
  CHECK(text.error().code == ErrorCode::InvalidInput);
  CHECK(text.error().message.find("text.efi") != std::string::npos);

  auto missing = read_uki_cmdline(tree.root() + "/boot/EFI/Linux/missing.efi");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::Io);

  // A symlink is not followed (the ESP is vfat; a link there is not something we expect).
  REQUIRE(::symlink((tree.root() + "/boot/EFI/Linux/nixos-gen1.efi").c_str(),
                    (tree.root() + "/boot/EFI/Linux/link.efi").c_str()) == 0);
  CHECK_FALSE(read_uki_cmdline(tree.root() + "/boot/EFI/Linux/link.efi"));
}

TEST_CASE("read_uki_cmdline: headers beyond the first 64 KiB are still found") {
  Tree tree;
  tree.write("far.efi", make_pe({{".cmdline", "init=/nix/store/far/init"}}, 70000));
  auto cmdline = read_uki_cmdline(tree.root() + "/far.efi");
  REQUIRE_MESSAGE(cmdline, cmdline.error().message);
  CHECK(*cmdline == "init=/nix/store/far/init");
}

}  // namespace bootstate

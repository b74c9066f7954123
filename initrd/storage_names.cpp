// Tables of the storage vocabulary. The GPT GUIDs are the ones libfdisk and the Discoverable
// Partitions Specification use (test_initrd checks every one against libfdisk's own table).
#include "initrd/storage_names.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "core/inline_text.hpp"

namespace bootstate {
namespace {

// InlineText, not std::string_view: these tables are in every run's binary, and a table of
// pointers is relocated, a page fault, at every start (core/inline_text.hpp).
struct TypeName {
  InlineText<15> name;
  InlineText<36> guid;
  unsigned dos_code;
};

// Why our own table rather than libfdisk's aliases: libfdisk knows only linux/swap/home/uefi/
// raid/lvm by alias, and resolving needs a context; plans also say esp, var, srv, ...
constexpr std::array<TypeName, 13> kTypes{{
    {"linux", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", 0x83},
    {"swap", "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", 0x82},
    {"esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 0xef},
    {"home", "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", 0x83},
    {"var", "4D21B016-B534-45C2-A9FB-5C16E091FD2D", 0x83},
    {"srv", "3B8F8425-20E0-4F3B-907F-1A25A76F98E8", 0x83},
    {"tmp", "7EC6F557-3BC5-4ACA-B293-16EF5DF639D1", 0x83},
    {"root", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", 0x83},
    {"usr", "8484680C-9521-48C6-9C11-B0720656F69E", 0x83},
    {"xbootldr", "BC13C2FF-59E6-4262-A352-B275FD6F7172", 0xea},
    {"lvm", "E6D6D379-F507-44C2-A23C-238F2A3DF928", 0x8e},
    {"raid", "A19D880F-05FC-4D3B-A006-743F0F84911E", 0xfd},
    {"bios-boot", "21686148-6449-6E6F-744E-656564454649", 0},
}};

struct AttrName {
  InlineText<15> name;
  unsigned bit;
};

// Bits 0-2 are UEFI's; 59-63 are the Discoverable Partitions Specification's (systemd).
constexpr std::array<AttrName, 7> kAttrs{{
    {"required", 0},
    {"no-block-io", 1},
    {"legacy-boot", 2},
    {"grow-fs", 59},
    {"read-only", 60},
    {"hidden", 62},
    {"no-auto", 63},
}};

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string upper_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_guid_text(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

Expected<std::optional<std::uint64_t>> parse_size(std::string_view text) {
  if (text == "max") return std::optional<std::uint64_t>{};
  std::string_view digits = text;
  unsigned shift = 0;
  if (!text.empty()) {
    std::string_view suffixes = "KMGT";
    if (auto at = suffixes.find(text.back()); at != std::string_view::npos) {
      shift = 10 * static_cast<unsigned>(at + 1);
      digits.remove_suffix(1);
    }
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return make_error(ErrorCode::InvalidInput,
                      "\"{}\" is not a size (digits with an optional K, M, G or T suffix, or "
                      "\"max\")",
                      text);
  }
  if (value == 0) return make_error(ErrorCode::InvalidInput, "size \"{}\" is zero", text);
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return make_error(ErrorCode::InvalidInput, "size \"{}\" is too large", text);
  }
  return std::optional<std::uint64_t>{value << shift};
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::array<std::string_view, 5> kUnits{"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  std::uint64_t whole = bytes;
  while (unit + 1 < kUnits.size() && whole >= 1024) {
    whole /= 1024;
    ++unit;
  }
  std::uint64_t scale = std::uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return fmt::format("{} {}", bytes / scale, kUnits[unit]);
  return fmt::format("{:.1f} {}", static_cast<double>(bytes) / static_cast<double>(scale),
                     kUnits[unit]);
}

Expected<std::string> resolve_type(std::string_view text) {
  if (is_guid_text(text)) return upper_ascii(text);
  std::string name = lower_ascii(text);
  for (const TypeName& type : kTypes) {
    if (type.name.view() == name) return std::string(type.guid.view());
  }
  return make_error(ErrorCode::InvalidInput,
                    "unknown partition type \"{}\" (a type GUID or one of linux, swap, esp, "
                    "home, var, srv, tmp, root, usr, xbootldr, lvm, raid, bios-boot)",
                    text);
}

Expected<unsigned> resolve_dos_type(std::string_view text) {
  std::string name = lower_ascii(text);
  for (const TypeName& type : kTypes) {
    if (type.name.view() == name && type.dos_code != 0) return type.dos_code;
  }
  std::string_view hex = name;
  if (hex.substr(0, 2) == "0x") hex.remove_prefix(2);
  unsigned code = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), code, 16);
  if (!hex.empty() && hex.size() <= 2 && ec == std::errc() && end == hex.data() + hex.size() &&
      code != 0) {
    return code;
  }
  return make_error(ErrorCode::InvalidInput,
                    "\"{}\" is not a dos partition type (a hex code such as 83, or linux, swap, "
                    "esp, lvm, raid)",
                    text);
}

std::optional<std::string_view> type_short_name(std::string_view guid) {
  std::string upper = upper_ascii(guid);
  for (const TypeName& type : kTypes) {
    if (type.guid.view() == upper) return type.name.view();
  }
  return std::nullopt;
}

Expected<std::uint64_t> parse_gpt_attrs(const std::vector<std::string>& names) {
  std::uint64_t mask = 0;
  for (const std::string& text : names) {
    std::optional<unsigned> bit;
    std::string name = lower_ascii(text);
    for (const AttrName& attr : kAttrs) {
      if (attr.name.view() == name) bit = attr.bit;
    }
    unsigned number = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (!bit && !name.empty() && ec == std::errc() && end == name.data() + name.size() &&
        number < 64) {
      bit = number;
    }
    if (!bit) {
      return make_error(ErrorCode::InvalidInput,
                        "unknown GPT attribute \"{}\" (a bit number 0-63 or one of required, "
                        "no-block-io, legacy-boot, grow-fs, read-only, hidden, no-auto)",
                        text);
    }
    mask |= std::uint64_t{1} << *bit;
  }
  return mask;
}

std::string format_gpt_attrs(std::uint64_t attrs) {
  std::string out;
  for (unsigned bit = 0; bit < 64; ++bit) {
    if ((attrs & (std::uint64_t{1} << bit)) == 0) continue;
    std::string name = std::to_string(bit);
    for (const AttrName& attr : kAttrs) {
      if (attr.bit == bit) name = std::string(attr.name.view());
    }
    if (!out.empty()) out += ',';
    out += name;
  }
  return out.empty() ? std::string("none") : out;
}

}  // namespace bootstate

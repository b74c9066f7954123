#include "tests/bootsim/efivarfs.hpp"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bootsim {
namespace fs = std::filesystem;
using bootstate::ErrorCode;
using bootstate::make_error;

namespace {

void put_u16(std::string& out, std::uint32_t unit) {
  out.push_back(static_cast<char>(unit & 0xff));
  out.push_back(static_cast<char>((unit >> 8) & 0xff));
}

}  // namespace

std::string utf16le_with_nul(std::string_view utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto byte = static_cast<unsigned char>(utf8[i]);
    std::uint32_t code = byte;
    std::size_t length = 1;
    if (byte >= 0xf0) {
      code = byte & 0x07;
      length = 4;
    } else if (byte >= 0xe0) {
      code = byte & 0x0f;
      length = 3;
    } else if (byte >= 0xc0) {
      code = byte & 0x1f;
      length = 2;
    }
    for (std::size_t k = 1; k < length && i + k < utf8.size(); ++k) {
      code = (code << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3f);
    }
    i += length;
    if (code >= 0x10000) {
      code -= 0x10000;
      put_u16(out, 0xd800 | (code >> 10));
      put_u16(out, 0xdc00 | (code & 0x3ff));
    } else {
      put_u16(out, code);
    }
  }
  put_u16(out, 0);
  return out;
}

std::optional<std::string> utf16le_to_utf8(std::string_view payload) {
  if (payload.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < payload.size(); i += 2) {
    std::uint32_t code =
        static_cast<unsigned char>(payload[i]) |
        (static_cast<std::uint32_t>(static_cast<unsigned char>(payload[i + 1])) << 8);
    if (code == 0) break;
    if (code >= 0xd800 && code < 0xdc00) {
      if (i + 3 >= payload.size()) return std::nullopt;
      const std::uint32_t low =
          static_cast<unsigned char>(payload[i + 2]) |
          (static_cast<std::uint32_t>(static_cast<unsigned char>(payload[i + 3])) << 8);
      if (low < 0xdc00 || low >= 0xe000) return std::nullopt;
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
      i += 2;
    } else if (code >= 0xdc00 && code < 0xe000) {
      return std::nullopt;
    }
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }
  return out;
}

EfiVars::EfiVars(std::string root) : dir_(std::move(root) + "/sys/firmware/efi/efivars") {}

std::string EfiVars::path(std::string_view name) const {
  return dir_ + "/" + std::string(name) + "-" + std::string(kLoaderGuid);
}

Expected<void> EfiVars::set_raw(std::string_view name, std::string_view payload,
                                std::uint32_t attrs) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return make_error(ErrorCode::Io, "create {}: {}", dir_, ec.message());
  std::string bytes;
  for (int shift = 0; shift < 32; shift += 8) {
    bytes.push_back(static_cast<char>((attrs >> shift) & 0xff));
  }
  bytes.append(payload);
  const std::string file = path(name);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return make_error(ErrorCode::Io, "write {}: {}", file, bootstate::errno_text(errno));
  return {};
}

Expected<void> EfiVars::set_string(std::string_view name, std::string_view value,
                                   std::uint32_t attrs) {
  return set_raw(name, utf16le_with_nul(value), attrs);
}

Expected<std::optional<std::string>> EfiVars::get_raw(std::string_view name) const {
  const std::string file = path(name);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (!fs::exists(file)) return std::optional<std::string>{};
    return make_error(ErrorCode::Io, "open {}: {}", file, bootstate::errno_text(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() < 4) {
    return make_error(ErrorCode::Corrupt, "{}: {} bytes, shorter than the attribute word", file,
                      bytes.size());
  }
  return std::optional<std::string>{bytes.substr(4)};
}

Expected<std::optional<std::string>> EfiVars::get_string(std::string_view name) const {
  auto raw = get_raw(name);
  if (!raw) return raw.error();
  if (!*raw) return std::optional<std::string>{};
  auto text = utf16le_to_utf8(**raw);
  if (!text) return make_error(ErrorCode::Corrupt, "{}: not a UTF-16LE string", path(name));
  return std::optional<std::string>{*text};
}

Expected<void> EfiVars::remove(std::string_view name) {
  std::error_code ec;
  fs::remove(path(name), ec);
  if (ec) return make_error(ErrorCode::Io, "remove {}: {}", path(name), ec.message());
  return {};
}

Expected<int> EfiVars::drop_volatile() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return 0;
  int dropped = 0;
  for (const auto& item : fs::directory_iterator(dir_, ec)) {
    std::ifstream in(item.path(), std::ios::binary);
    char attrs[4] = {};
    in.read(attrs, 4);
    // A file shorter than the attribute word is not a variable the firmware would keep.
    if (in.gcount() == 4 && (static_cast<unsigned char>(attrs[0]) & kNonVolatile) != 0) continue;
    fs::remove(item.path(), ec);
    if (ec) return make_error(ErrorCode::Io, "remove {}: {}", item.path().string(), ec.message());
    ++dropped;
  }
  if (ec) return make_error(ErrorCode::Io, "list {}: {}", dir_, ec.message());
  return dropped;
}

}  // namespace bootsim

#include "bootloader/efivars.hpp"

#include "bootloader/unique_fd.hpp"
#include "core/paths.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bootstate {
namespace {

constexpr int kReadRetries = 5;
constexpr useconds_t kReadRetryDelayUsec = 50'000;

// EFI variable strings are UTF-16LE. Converted here rather than with iconv: glibc's iconv needs
// its gconv modules at run time, and initrds (dracut's, NixOS') do not carry them — the VM
// tests found every EFI variable unreadable in the initrd phases. systemd converts by hand too.
void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

void append_utf16le(std::string& out, char32_t c) {
  auto unit = [&out](char32_t u) {
    out += static_cast<char>(u & 0xff);
    out += static_cast<char>((u >> 8) & 0xff);
  };
  if (c < 0x10000) {
    unit(c);
  } else {
    c -= 0x10000;
    unit(0xd800 + (c >> 10));
    unit(0xdc00 + (c & 0x3ff));
  }
}

Expected<std::string> utf16le_to_utf8(std::string_view input, std::string_view what) {
  auto bad = [&](std::size_t at) {
    return make_error(ErrorCode::Io, "{} is not valid UTF-16LE at byte {}", what, at);
  };
  if (input.size() % 2 != 0) return bad(input.size() - 1);
  auto unit_at = [&input](std::size_t i) -> char32_t {
    return static_cast<unsigned char>(input[i]) | static_cast<unsigned char>(input[i + 1]) << 8;
  };
  std::string out;
  for (std::size_t i = 0; i < input.size(); i += 2) {
    char32_t c = unit_at(i);
    if (c >= 0xdc00 && c <= 0xdfff) return bad(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      if (i + 3 >= input.size()) return bad(i);
      const char32_t low = unit_at(i + 2);
      if (low < 0xdc00 || low > 0xdfff) return bad(i + 2);
      c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
      i += 2;
    }
    append_utf8(out, c);
  }
  return out;
}

Expected<std::string> utf8_to_utf16le(std::string_view input, std::string_view what) {
  auto bad = [&](std::size_t at) {
    return make_error(ErrorCode::InvalidInput, "{} is not valid UTF-8 at byte {}", what, at);
  };
  std::string out;
  for (std::size_t i = 0; i < input.size();) {
    const auto lead = static_cast<unsigned char>(input[i]);
    const int length = lead < 0x80         ? 1
                       : (lead >> 5) == 6  ? 2
                       : (lead >> 4) == 14 ? 3
                       : (lead >> 3) == 30 ? 4
                                           : 0;
    if (length == 0 || i + length > input.size()) return bad(i);
    char32_t c = length == 1 ? lead : lead & (0x7f >> length);
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(input[i + k]);
      if ((next & 0xc0) != 0x80) return bad(i + k);
      c = (c << 6) | (next & 0x3f);
    }
    static constexpr char32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMinimum[length] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return bad(i);
    append_utf16le(out, c);
    i += length;
  }
  return out;
}

std::string le32_bytes(std::uint32_t value) {
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// Clears FS_IMMUTABLE_FL on an existing variable file and says whether it was set, so it can be
// restored. Filesystems without the flags ioctl (tmpfs, overlay in tests) have nothing to clear.
Expected<bool> clear_immutable(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return false;
    return make_error(ErrorCode::Io, "open {}: {}", path, errno_text(errno));
  }
  int flags = 0;
  if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) < 0) return false;
  if ((flags & FS_IMMUTABLE_FL) == 0) return false;
  flags &= ~FS_IMMUTABLE_FL;
  if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) < 0) {
    return make_error(ErrorCode::Io, "clearing the immutable flag of {}: {}", path,
                      errno_text(errno));
  }
  return true;
}

void restore_immutable(int fd) {
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) return;
  flags |= FS_IMMUTABLE_FL;
  // Best effort, as systemd does: the write already happened and is what matters.
  (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

}  // namespace

Expected<std::string> encode_efi_string_file(std::string_view text, std::uint32_t attributes) {
  auto utf16 = utf8_to_utf16le(text, fmt::format("\"{}\"", text));
  if (!utf16) return utf16.error();
  return le32_bytes(attributes) + *utf16 + std::string(2, '\0');
}

Expected<std::string> decode_efi_string(std::string_view payload) {
  if (payload.size() % 2 != 0) {
    return make_error(ErrorCode::Corrupt, "UTF-16 string of odd length {}", payload.size());
  }
  std::size_t end = 0;
  while (end < payload.size() && (payload[end] != '\0' || payload[end + 1] != '\0')) end += 2;
  auto text = utf16le_to_utf8(payload.substr(0, end), "EFI variable string");
  if (!text) return make_error(ErrorCode::Corrupt, "{}", text.error().message);
  return text;
}

EfiVariables::EfiVariables(std::string root)
    : root_(std::move(root)), directory_(path_join(root_, "sys/firmware/efi/efivars")) {}

bool EfiVariables::efi_booted() const {
  return ::access(path_join(root_, "sys/firmware/efi").c_str(), F_OK) == 0;
}

Expected<void> EfiVariables::mount_if_missing() const {
  if (!efi_booted()) return {};
  struct statfs fs {};
  if (::statfs(directory_.c_str(), &fs) == 0 &&
      static_cast<unsigned long>(fs.f_type) == EFIVARFS_MAGIC) {
    return {};
  }
  if (::mount("efivarfs", directory_.c_str(), "efivarfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) < 0 &&
      errno != EBUSY) {
    return make_error(ErrorCode::Io, "mount efivarfs on {}: {}", directory_, errno_text(errno));
  }
  return {};
}

std::string EfiVariables::path(std::string_view name, std::string_view vendor) const {
  return fmt::format("{}/{}-{}", directory_, name, vendor);
}

Expected<std::optional<std::string>> EfiVariables::read(std::string_view name,
                                                        std::string_view vendor) const {
  const std::string file = path(name, vendor);
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return make_error(ErrorCode::Io, "open {}: {}", file, errno_text(errno));
  }
  std::string contents;
  char buffer[4096];
  int retries = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      // The kernel rate-limits efivarfs reads with EINTR; waiting beats failing the phase.
      if (errno == EINTR && retries++ < kReadRetries) {
        ::usleep(kReadRetryDelayUsec);
        continue;
      }
      return make_error(ErrorCode::Io, "read {}: {}", file, errno_text(errno));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<std::size_t>(n));
  }
  if (contents.size() < 4) {
    return make_error(ErrorCode::Corrupt, "{}: {} bytes, shorter than the attribute word", file,
                      contents.size());
  }
  return std::optional<std::string>(contents.substr(4));
}

Expected<std::optional<std::string>> EfiVariables::read_string(std::string_view name,
                                                               std::string_view vendor) const {
  auto payload = read(name, vendor);
  if (!payload) return payload.error();
  if (!*payload) return std::optional<std::string>();
  auto text = decode_efi_string(**payload);
  if (!text) return text.error().with_context(path(name, vendor));
  return std::optional<std::string>(std::move(*text));
}

Expected<std::optional<std::uint64_t>> EfiVariables::read_u64(std::string_view name,
                                                              std::string_view vendor) const {
  auto payload = read(name, vendor);
  if (!payload) return payload.error();
  if (!*payload) return std::optional<std::uint64_t>();
  if ((*payload)->size() != 8) {
    return make_error(ErrorCode::Corrupt, "{}: expected 8 bytes of payload, found {}",
                      path(name, vendor), (*payload)->size());
  }
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>((**payload)[i]);
  return std::optional<std::uint64_t>(value);
}

Expected<void> EfiVariables::write(std::string_view name, std::string_view payload,
                                   std::uint32_t attributes, std::string_view vendor) {
  const std::string file = path(name, vendor);
  auto was_immutable = clear_immutable(file);
  if (!was_immutable) return was_immutable.error();

  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644));
  if (fd.get() < 0) {
    return make_error(ErrorCode::Io, "open {} for writing: {}", file, errno_text(errno));
  }
  // efivarfs replaces the whole variable with each write and does not support truncation; a
  // plain file (tests, --root) keeps old bytes past the new end unless truncated.
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) != EFIVARFS_MAGIC) {
    if (::ftruncate(fd.get(), 0) < 0) {
      return make_error(ErrorCode::Io, "truncate {}: {}", file, errno_text(errno));
    }
  }
  const std::string bytes = le32_bytes(attributes) + std::string(payload);
  const ssize_t written = ::write(fd.get(), bytes.data(), bytes.size());
  const int saved_errno = errno;
  if (*was_immutable) restore_immutable(fd.get());
  if (written < 0) {
    return make_error(ErrorCode::Io, "write {}: {}", file, errno_text(saved_errno));
  }
  if (static_cast<std::size_t>(written) != bytes.size()) {
    return make_error(ErrorCode::Io, "write {}: short write of {} of {} bytes", file, written,
                      bytes.size());
  }
  return {};
}

Expected<void> EfiVariables::write_string(std::string_view name, std::string_view text,
                                          std::string_view vendor) {
  auto bytes = encode_efi_string_file(text);
  if (!bytes) return bytes.error().with_context(fmt::format("writing {}", path(name, vendor)));
  return write(name, std::string_view(*bytes).substr(4), kEfiVariableAttributes, vendor);
}

Expected<void> EfiVariables::remove(std::string_view name, std::string_view vendor) {
  const std::string file = path(name, vendor);
  auto was_immutable = clear_immutable(file);
  if (!was_immutable) return was_immutable.error();
  if (::unlink(file.c_str()) < 0 && errno != ENOENT) {
    return make_error(ErrorCode::Io, "unlink {}: {}", file, errno_text(errno));
  }
  return {};
}

}  // namespace bootstate

#include "stage2/backup_manifest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/read_file.hpp"
#include "stage2/fd.hpp"

namespace bootstate::stage2 {

namespace {

constexpr std::string_view kManifestHeader = "bootstate-backup 1";

Error io_error(std::string_view what, const std::string& path, int error) {
  return make_error(ErrorCode::Io, "cannot {} {}: {}", what, path, errno_text(error));
}

}  // namespace

Expected<void> write_manifest(const std::string& directory,
                              const std::vector<ManifestEntry>& entries) {
  std::string text(kManifestHeader);
  text += '\n';
  for (const auto& entry : entries) {
    text += entry.present ? "+ " : "- ";
    text += entry.path;
    text += '\n';
  }
  const std::string path = directory + "/manifest";
  Fd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!file.valid()) return io_error("create", path, errno);
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t written = ::write(file.get(), rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return io_error("write", path, errno);
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fsync(file.get()) != 0) return io_error("fsync", path, errno);
  return sync_directory(directory);
}

Expected<std::vector<ManifestEntry>> read_manifest(const std::string& directory) {
  const std::string path = directory + "/manifest";
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == ErrorCode::NotFound) {
      return make_error(ErrorCode::NotFound, "no complete backup snapshot: {} is missing", path);
    }
    return text.error();
  }
  // Lines as std::getline gives them: a last line without '\n' counts, a final '\n' adds none.
  std::string_view rest = *text;
  auto next_line = [&rest](std::string_view& line) {
    if (rest.empty()) return false;
    const std::size_t end = rest.find('\n');
    line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    return true;
  };
  std::string_view line;
  if (!next_line(line) || line != kManifestHeader) {
    return make_error(ErrorCode::Corrupt, "{}:1: expected \"{}\"", path, kManifestHeader);
  }
  std::vector<ManifestEntry> entries;
  for (int number = 2; next_line(line); ++number) {
    if (line.size() < 3 || (line[0] != '+' && line[0] != '-') || line[1] != ' ' ||
        !check_backup_path(line.substr(2))) {
      return make_error(ErrorCode::Corrupt, "{}:{}: malformed entry \"{}\"", path, number, line);
    }
    entries.push_back(ManifestEntry{std::string(line.substr(2)), line[0] == '+'});
  }
  return entries;
}

Expected<void> check_backup_path(std::string_view path) {
  if (path.empty() || path[0] != '/' || path == "/") {
    return make_error(ErrorCode::InvalidInput, "backup path \"{}\": must be absolute and not /",
                      path);
  }
  if (path.find('\n') != std::string_view::npos) {
    return make_error(ErrorCode::InvalidInput, "backup path \"{}\": contains a newline", path);
  }
  for (std::string_view rest = path.substr(1); !rest.empty();) {
    auto slash = rest.find('/');
    std::string_view component = rest.substr(0, slash);
    if (component.empty() || component == "." || component == "..") {
      return make_error(ErrorCode::InvalidInput,
                        "backup path \"{}\": empty, \".\" or \"..\" component", path);
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return {};
}

std::string under_root(std::string_view root, std::string_view path) {
  while (!root.empty() && root.back() == '/') root.remove_suffix(1);
  return std::string(root) + std::string(path);
}

Expected<void> sync_directory(const std::string& path) {
  Fd directory(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!directory.valid()) return io_error("open directory", path, errno);
  if (::fsync(directory.get()) != 0) return io_error("fsync directory", path, errno);
  return {};
}

Expected<void> sync_file_system(const std::string& path) {
  Fd directory(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!directory.valid()) return io_error("open directory", path, errno);
  if (::syncfs(directory.get()) != 0) return io_error("sync the file system of", path, errno);
  return {};
}

Expected<bool> exists(const std::string& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return io_error("inspect", path, errno);
}

}  // namespace bootstate::stage2

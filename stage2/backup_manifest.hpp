// The manifest of a backup snapshot and the small durable-file-system helpers the backup store
// needs. A snapshot directory is complete exactly when its manifest exists: the manifest is
// written (and fsynced) only after every copied file is on disk.
//
// Manifest format (text, one entry per line, paths never contain a newline):
//   bootstate-backup 1
//   + /etc/app        the path existed; its copy is data/<line index, 0-based>
//   - /etc/app.new    the path did not exist: restore removes it
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/directory.hpp"  // remove_tree, used with these
#include "core/error.hpp"

namespace bootstate::stage2 {

struct ManifestEntry {
  std::string path;      // absolute, as the plan names it (without the store's root)
  bool present = false;  // the path existed when the snapshot was taken
};

// Writes `<directory>/manifest` and makes it and the directory entry durable.
Expected<void> write_manifest(const std::string& directory,
                              const std::vector<ManifestEntry>& entries);

// Reads `<directory>/manifest`; NotFound when there is none (no complete snapshot), Corrupt
// when it cannot be parsed (the message names the file and line).
Expected<std::vector<ManifestEntry>> read_manifest(const std::string& directory);

// Whether `path` can be backed up: absolute, not "/", no "." or ".." components, no newline.
// The message of the error names the path.
Expected<void> check_backup_path(std::string_view path);

// `path` (absolute) below `root` ("/" or a prefix such as "/sysroot").
std::string under_root(std::string_view root, std::string_view path);

// fsync of a directory, so that renames and new entries in it survive a power cut.
Expected<void> sync_directory(const std::string& path);
// syncfs of the file system holding `path`: one call makes every copied file durable.
Expected<void> sync_file_system(const std::string& path);
// Whether something (of any type, symlinks not followed) exists at `path`.
Expected<bool> exists(const std::string& path);

}  // namespace bootstate::stage2

// The files of an entries directory on the ESP ($ESP/loader/entries, $ESP/EFI/Linux): which
// file an entry currently is (a pure choice) and the rename that changes its counter (the only
// effect, done the way systemd-bless-boot does it: never replacing, then made durable).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bootloader/entry_name.hpp"
#include "core/error.hpp"

namespace bootstate {

struct EntryFile {
  std::string file_name;  // as found in the directory: "nixos-abc+2-1.conf"
  EntryName name;         // parsed
};

// The regular files of `directory` whose names parse as entry names, sorted by file name.
// A directory that does not exist has no entries (an ESP without UKIs has no EFI/Linux).
Expected<std::vector<EntryFile>> list_entry_files(const std::string& directory);

// The files of `files` that are variants (any counter, or none) of entry `id` with `suffix`.
std::vector<EntryFile> entry_variants(const std::vector<EntryFile>& files, std::string_view id,
                                      std::string_view suffix);

// Pure: which of an entry's variants is its current file. `preferred` is the file the boot
// loader reported (LoaderBootCountPath), taken when it still exists; otherwise the only variant.
// NotFound when there is none; Failed when there are several and none is preferred (renaming
// one of them could leave the boot loader picking the other).
Expected<EntryFile> choose_current_file(const std::vector<EntryFile>& variants,
                                        const std::optional<std::string>& preferred,
                                        std::string_view id, std::string_view directory);

enum class RenameOutcome { Renamed, AlreadyDone };

// Renames `from` to `to` inside `directory` without ever replacing an existing `to`
// (renameat2 RENAME_NOREPLACE; on file systems without it, a check then rename): one
// rename(2), so after a power cut the entry has its old name or its new one, never both. `to`
// existing with `from` gone is AlreadyDone
// ("operation already executed", as systemd-bless-boot says). After a rename, fsyncs the
// directory and syncfs()es its file system so the boot loader sees the new name after a power
// cut.
Expected<RenameOutcome> rename_entry_file(const std::string& directory, const std::string& from,
                                          const std::string& to);

}  // namespace bootstate

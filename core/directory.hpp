// Directory effects with POSIX calls: list, create with parents, remove a tree. Not
// std::filesystem, for the start-up cost core/paths.hpp describes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/error.hpp"

namespace bootstate {

// The names in `path` (without "." and ".."), unsorted. A missing directory is
// ErrorCode::NotFound; messages name the path.
Expected<std::vector<std::string>> list_directory(const std::string& path);

// mkdir -p: every missing directory of `path` with `mode`; existing ones are left alone.
Expected<void> make_directories(const std::string& path, mode_t mode = 0755);

// rm -r without following symbolic links (a link is removed, never what it points to); a
// missing `path` is success.
Expected<void> remove_tree(const std::string& path);

}  // namespace bootstate

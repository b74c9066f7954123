// Directories below a trusted one, walked without following symlinks: bootstate runs as root
// and writes step logs and work directories below its data directory; a symlink planted there
// (by a step, or by anyone who could write there once) must not redirect root's writes.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "stage2/fd.hpp"

namespace bootstate::stage2 {

// Opens directory `name` inside the directory `parent` (a descriptor) without following a
// symlink; creates it with `mode` when missing and `create`. A symlink or a non-directory
// there is an error naming `shown` (the path for messages).
Expected<Fd> open_directory_at(int parent, const std::string& name, bool create, mode_t mode,
                               const std::string& shown);

// Creates every component of `relative` ("a/b/c", no "." or "..") below the existing directory
// `base` with mkdirat, refusing a component that exists as a symlink or a non-directory.
// Returns the last directory, open.
Expected<Fd> make_directories_below(const std::string& base, std::string_view relative,
                                    mode_t mode = 0755);

}  // namespace bootstate::stage2

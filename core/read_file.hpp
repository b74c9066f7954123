// Reading a whole small file (a plan, an entry, /proc/cmdline, a manifest) with open/read.
// Not std::ifstream: the first iostream builds the C++ locale, and linking iostreams or
// std::regex pulls the locale's facets into the program, whose relocated tables cost every
// start-up page faults (docs/PERFORMANCE.md (a)).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "core/error.hpp"

namespace bootstate {

// fstat(2), as the code on an idle boot's path calls it. glibc's fstat is fstatat(fd, "",
// AT_EMPTY_PATH), and the kernel reads that "" from glibc's read-only data: a page fault that
// nothing else on the path needs (docs/PERFORMANCE.md "(j)"). The empty path here is on the
// stack, whose pages are already there.
inline int stat_descriptor(int fd, struct stat& status) {
  char empty_path[1] = {'\0'};
  return ::fstatat(fd, empty_path, &status, AT_EMPTY_PATH);
}

// The file's bytes. A missing file (ENOENT, or ENOTDIR: a component is no directory) is
// ErrorCode::NotFound (callers often treat it as "none"); anything but a regular file (a FIFO,
// a device, a directory) is ErrorCode::InvalidInput without reading or blocking on it; any
// other failure ErrorCode::Io; messages name the path. Symlinks are followed: plans live in
// the Nix store, where links are the rule.
Expected<std::string> read_file(const std::string& path);

// The same for a file a less trusted party writes (a step's progress file, in a work directory
// the step's user owns): the last component is not followed (ELOOP is InvalidInput), and at most
// `limit` bytes are read.
Expected<std::string> read_untrusted_file(const std::string& path, std::size_t limit);

}  // namespace bootstate

// Path arithmetic on plain strings, as std::filesystem::path spells it. Not std::filesystem:
// linking it brings the C++ locale and iostreams into the program, whose relocated tables and
// scattered code cost every start-up page faults, and its component parsing was ≈ 10 % of a
// nothing-pending run's instructions (docs/PERFORMANCE.md (a)).
#pragma once

#include <string>
#include <string_view>

namespace bootstate {

// `base / relative`: an absolute `relative` replaces `base`, an empty `base` leaves `relative`
// alone.
inline std::string path_join(std::string_view base, std::string_view relative) {
  if (base.empty() || (!relative.empty() && relative.front() == '/')) {
    return std::string(relative);
  }
  std::string joined;
  joined.reserve(base.size() + 1 + relative.size());
  joined.append(base);
  if (joined.back() != '/') joined += '/';
  joined.append(relative);
  return joined;
}

// path(text).lexically_normal() without a trailing '/': "." and empty components dropped,
// "name/.." removed, ".." above the root dropped ("/../a" is "/a"), "" stays "".
std::string lexically_normal(std::string_view text);

// `path` inside the directory `root`, never outside it: normalized as if `root` were "/", so
// ".." stops at `root` and a relative `path` counts from `root` ("/../etc" and "etc" are both
// ROOT/etc). An empty `root` means no re-rooting: `path` as given. Lexical only: a symlink
// inside `root` can still point out, which is why the store's own files are opened with
// O_NOFOLLOW under a checked directory (core/slot_files.hpp).
std::string path_inside(std::string_view root, std::string_view path);

}  // namespace bootstate

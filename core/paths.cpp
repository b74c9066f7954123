#include "core/paths.hpp"

#include <vector>

namespace bootstate {

std::string lexically_normal(std::string_view text) {
  if (text.empty()) return {};
  const bool absolute = text.front() == '/';
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const std::size_t slash = text.find('/');
    const std::string_view part = text.substr(0, slash);
    text.remove_prefix(slash == std::string_view::npos ? text.size() : slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
        continue;
      }
      if (absolute) continue;  // the root's parent is the root
    }
    parts.push_back(part);
  }
  if (parts.empty()) return absolute ? "/" : ".";
  std::string result;
  for (const std::string_view part : parts) {
    if (absolute || !result.empty()) result += '/';
    result.append(part);
  }
  return result;
}

std::string path_inside(std::string_view root, std::string_view path) {
  if (root.empty()) return std::string(path);
  std::string slash_path = "/";
  slash_path.append(path);
  const std::string inside = lexically_normal(slash_path);
  std::string result(root);
  if (inside != "/") result += inside;
  return result;
}

}  // namespace bootstate

#include "bootloader/entry_name.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <vector>

namespace bootstate {
namespace {

constexpr std::string_view kSuffixes[] = {".conf", ".efi"};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Leading decimal digits of `text` as a counter value; systemd-boot rejects values above
// INT_MAX, and so do we (the name then has no counter).
std::optional<int> take_number(std::string_view& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc{} || end != text.data() + digits || value > INT_MAX) return std::nullopt;
  text.remove_prefix(digits);
  return static_cast<int>(value);
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string_view unquote(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    return value.substr(1, value.size() - 2);
  }
  return value;
}

// Calls `visit(key, value)` for each "key value" line, skipping blanks and '#' comments.
template <typename Visit>
void for_each_key_value(std::string_view text, Visit&& visit) {
  while (!text.empty()) {
    const auto newline = text.find('\n');
    std::string_view line = trim(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.find_first_of(" \t");
    const std::string_view key = line.substr(0, space);
    const std::string_view value =
        space == std::string_view::npos ? std::string_view{} : unquote(trim(line.substr(space)));
    visit(key, value);
  }
}

// The generation named by the last init= among whitespace-separated kernel parameters.
std::optional<std::string> generation_of_parameters(std::string_view parameters) {
  std::optional<std::string_view> init;
  while (!parameters.empty()) {
    const auto start = parameters.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) break;
    parameters.remove_prefix(start);
    const auto end = parameters.find_first_of(" \t\r\n");
    const std::string_view token = parameters.substr(0, end);
    parameters = end == std::string_view::npos ? std::string_view{} : parameters.substr(end);
    if (token.starts_with("init=")) init = unquote(token.substr(5));
  }
  if (!init || !init->starts_with('/')) return std::nullopt;
  const auto slash = init->rfind('/');
  if (slash == 0 || init->substr(slash) != "/init") return std::nullopt;
  return std::string(init->substr(0, slash));
}

}  // namespace

std::optional<EntryName> parse_entry_name(std::string_view file_name) {
  std::string_view suffix;
  for (const std::string_view candidate : kSuffixes) {
    if (file_name.size() > candidate.size() &&
        iequals(file_name.substr(file_name.size() - candidate.size()), candidate)) {
      suffix = file_name.substr(file_name.size() - candidate.size());
    }
  }
  if (suffix.empty()) return std::nullopt;
  const std::string_view stem = file_name.substr(0, file_name.size() - suffix.size());

  EntryName name{std::string(stem), std::string(suffix), std::nullopt};
  // Like boot.c: the counter starts after the last '+'; anything but "LEFT[-DONE]" between it
  // and the suffix means the name simply has no counter.
  const auto plus = stem.rfind('+');
  if (plus == std::string_view::npos || plus == 0) return name;
  std::string_view rest = stem.substr(plus + 1);
  const auto left = take_number(rest);
  if (!left) return name;
  std::optional<int> done;
  if (!rest.empty() && rest.front() == '-') {
    rest.remove_prefix(1);
    done = take_number(rest);
    if (!done) return name;
  }
  if (!rest.empty()) return name;
  name.id = std::string(stem.substr(0, plus));
  name.counter = EntryCounter{*left, done};
  return name;
}

std::string compose_entry_name(const EntryName& name) {
  if (!name.counter) return name.id + name.suffix;
  if (!name.counter->tries_done) {
    return fmt::format("{}+{}{}", name.id, name.counter->tries_left, name.suffix);
  }
  return fmt::format("{}+{}-{}{}", name.id, name.counter->tries_left, *name.counter->tries_done,
                     name.suffix);
}

EntryName good_entry_name(const EntryName& name) {
  return EntryName{name.id, name.suffix, std::nullopt};
}

EntryName bad_entry_name(const EntryName& name, int done) {
  return EntryName{name.id, name.suffix,
                   EntryCounter{0, done == 0 ? std::nullopt : std::optional<int>(done)}};
}

EntryName rearmed_entry_name(const EntryName& name, int tries) {
  return EntryName{name.id, name.suffix, EntryCounter{tries, 0}};
}

bool same_entry_id(std::string_view a, std::string_view b) {
  return iequals(a, b);
}

std::optional<std::string> entry_generation(std::string_view entry_file_text) {
  std::string options;
  for_each_key_value(entry_file_text, [&](std::string_view key, std::string_view value) {
    if (key != "options") return;
    if (!options.empty()) options += ' ';
    options += value;
  });
  return generation_of_parameters(options);
}

std::optional<std::string> cmdline_generation(std::string_view cmdline) {
  return generation_of_parameters(cmdline);
}

LoaderConf parse_loader_conf(std::string_view text) {
  LoaderConf conf;
  for_each_key_value(text, [&](std::string_view key, std::string_view value) {
    if (key == "default") conf.default_pattern = std::string(value);
    if (key == "timeout") conf.timeout = std::string(value);
  });
  return conf;
}

}  // namespace bootstate

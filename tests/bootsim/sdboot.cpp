#include "tests/bootsim/sdboot.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

namespace bootsim {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_version_char(char c) {
  return is_digit(c) || is_alpha(c) || c == '~' || c == '-' || c == '^' || c == '.';
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with_no_case(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         lowercase(text.substr(text.size() - suffix.size())) == lowercase(suffix);
}

int sign(int value) {
  return (value > 0) - (value < 0);
}

// strcmp on optional strings where absent sorts first, as systemd's strcmp_ptr/strcmp16 do.
int compare_ptr(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (a && b) return sign(a->compare(*b));
  return static_cast<int>(a.has_value()) - static_cast<int>(b.has_value());
}

// Reads decimal digits at `pos`; false when there are none or the value exceeds INT_MAX
// (parse_number16 plus the INT_MAX check of config_entry_parse_tries).
bool take_number(std::string_view text, std::size_t& pos, int& value) {
  const std::size_t start = pos;
  long long accumulated = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    accumulated = accumulated * 10 + (text[pos] - '0');
    if (accumulated > INT_MAX) return false;
    ++pos;
  }
  value = static_cast<int>(accumulated);
  return pos > start;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// line_get_key_value(): "key value" lines, '#' comments, value trimmed and unquoted.
template <typename Visit>
void for_each_key_value(std::string_view text, Visit&& visit) {
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = trim(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto blank = line.find_first_of(" \t");
    if (blank == std::string_view::npos) continue;  // a key without value is ignored
    std::string_view value = trim(line.substr(blank));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    visit(line.substr(0, blank), value);
  }
}

}  // namespace

int version_compare(const std::optional<std::string>& a_text,
                    const std::optional<std::string>& b_text) {
  if (!a_text || !b_text || a_text->empty() || b_text->empty()) return compare_ptr(a_text, b_text);
  const char* a = a_text->c_str();
  const char* b = b_text->c_str();
  for (;;) {
    while (*a != '\0' && !is_version_char(*a)) ++a;
    while (*b != '\0' && !is_version_char(*b)) ++b;
    // '~' marks a pre-release: older than anything else at this position.
    if (*a == '~' || *b == '~') {
      if (const int r = static_cast<int>(*a != '~') - static_cast<int>(*b != '~')) return r;
      ++a;
      ++b;
    }
    // More segments is newer, so the end of either string decides here.
    if (*a == '\0' || *b == '\0')
      return sign(static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b));
    for (const char separator : {'-', '^', '.'}) {
      if (*a == separator || *b == separator) {
        if (const int r = static_cast<int>(*a != separator) - static_cast<int>(*b != separator)) {
          return r;
        }
        ++a;
        ++b;
      }
    }
    const char* a_end = a;
    const char* b_end = b;
    if (is_digit(*a) || is_digit(*b)) {
      while (*a == '0') ++a;
      while (*b == '0') ++b;
      for (a_end = a; is_digit(*a_end);) ++a_end;
      for (b_end = b; is_digit(*b_end);) ++b_end;
      // A longer number is larger; equal lengths compare as text.
      if (const int r = sign(static_cast<int>((a_end - a) - (b_end - b)))) return r;
      if (const int r = sign(std::strncmp(a, b, static_cast<std::size_t>(a_end - a)))) return r;
    } else {
      for (a_end = a; is_alpha(*a_end);) ++a_end;
      for (b_end = b; is_alpha(*b_end);) ++b_end;
      const auto common = static_cast<std::size_t>(std::min(a_end - a, b_end - b));
      if (const int r = sign(std::strncmp(a, b, common))) return r;
      if (const int r = sign(static_cast<int>((a_end - a) - (b_end - b)))) return r;
    }
    a = a_end;
    b = b_end;
  }
}

std::optional<Counter> parse_counter(std::string_view file_name, std::string_view suffix) {
  const auto plus = file_name.rfind('+');
  if (plus == std::string_view::npos) return std::nullopt;
  Counter counter;
  counter.prefix_len = plus;
  std::size_t pos = plus + 1;
  if (!take_number(file_name, pos, counter.left)) return std::nullopt;
  if (pos < file_name.size() && file_name[pos] == '-') {
    ++pos;
    if (!take_number(file_name, pos, counter.done)) return std::nullopt;
    counter.done_written = true;
  }
  // A counter in the middle of the name is no counter (the suffix comparison is exact).
  if (file_name.substr(pos) != suffix) return std::nullopt;
  return counter;
}

std::string next_counter_name(std::string_view file_name, const Counter& counter,
                              std::string_view suffix) {
  const int left = counter.left > 0 ? counter.left - 1 : 0;
  const int done = counter.done < INT_MAX ? counter.done + 1 : INT_MAX;
  return std::string(file_name.substr(0, counter.prefix_len)) + "+" + std::to_string(left) + "-" +
         std::to_string(done) + std::string(suffix);
}

LoaderConf parse_loader_conf(std::string_view text) {
  LoaderConf conf;
  for_each_key_value(text, [&](std::string_view key, std::string_view value) {
    if (key == "default") {
      // Only "@saved" is a special id; other '@' values are rejected and ignored.
      if (value.starts_with('@') && value != "@saved") return;
      conf.default_pattern = lowercase(value);
    } else if (key == "timeout") {
      conf.timeout = std::string(value);
    }
  });
  return conf;
}

std::string entry_id(std::string_view file_name, LoaderVersion version) {
  if (version == LoaderVersion::V257) {
    if (const auto counter = parse_counter(file_name, ".conf")) {
      return lowercase(std::string(file_name.substr(0, counter->prefix_len)) + ".conf");
    }
  }
  return lowercase(file_name);
}

std::optional<Entry> parse_entry(std::string_view file_name, std::string_view text,
                                 LoaderVersion version) {
  if (file_name.starts_with('.') || file_name.starts_with("auto-")) return std::nullopt;
  if (!ends_with_no_case(file_name, ".conf")) return std::nullopt;
  Entry entry;
  entry.file_name = std::string(file_name);
  bool wrong_architecture = false;
  for_each_key_value(text, [&](std::string_view key, std::string_view value_view) {
    if (wrong_architecture) return;
    std::string value(value_view);
    if (key == "title")
      entry.title = value;
    else if (key == "sort-key")
      entry.sort_key = value;
    else if (key == "version")
      entry.version = value;
    else if (key == "machine-id")
      entry.machine_id = value;
    else if (key == "linux")
      entry.linux_path = value;
    else if (key == "efi")
      entry.efi = value;
    else if (key == "initrd")
      entry.initrd.push_back(value);
    else if (key == "architecture")
      wrong_architecture = value != "x64";
    else if (key == "options")
      entry.options = entry.options.empty() ? value : entry.options + " " + value;
  });
  if (wrong_architecture || (!entry.linux_path && !entry.efi)) return std::nullopt;
  entry.id = entry_id(file_name, version);
  entry.counter = parse_counter(file_name, ".conf");
  return entry;
}

bool entry_before(const Entry& a, const Entry& b) {
  // Order: the first differing criterion decides; a negative result means `a` goes first.
  auto compare = [&]() -> int {
    if (const int r =
            static_cast<int>(a.tries_left() == 0) - static_cast<int>(b.tries_left() == 0)) {
      return r;
    }
    // New-style (sort-key) entries before old-style ones.
    if (const int r = static_cast<int>(!a.sort_key) - static_cast<int>(!b.sort_key)) return r;
    if (a.sort_key && b.sort_key) {
      if (const int r = compare_ptr(a.sort_key, b.sort_key)) return r;
      if (const int r = compare_ptr(a.machine_id, b.machine_id)) return r;
      if (const int r = -version_compare(a.version, b.version)) return r;  // newest first
    }
    if (const int r = -version_compare(a.id, b.id)) return r;
    if (a.tries_left() < 0 || b.tries_left() < 0) return 0;
    if (const int r = -sign(a.tries_left() - b.tries_left())) return r;
    return sign(a.tries_done() - b.tries_done());
  };
  return compare() < 0;
}

void sort_entries(std::vector<Entry>& entries) {
  // systemd-boot's insertion sort is stable; ties keep the order the directory listed them.
  std::stable_sort(entries.begin(), entries.end(), entry_before);
}

bool pattern_matches(std::string_view pattern, std::string_view id) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(id).c_str(), 0) == 0;
}

std::string_view to_string(ChosenBy by) {
  switch (by) {
    case ChosenBy::OneShot:
      return "one-shot";
    case ChosenBy::DefaultVariable:
      return "LoaderEntryDefault";
    case ChosenBy::SavedEntry:
      return "saved";
    case ChosenBy::DefaultPattern:
      return "default-pattern";
    case ChosenBy::FirstEntry:
      return "first-entry";
  }
  return "?";
}

std::optional<Selection> select_entry(const std::vector<Entry>& sorted, const SelectionInput& in) {
  if (sorted.empty()) return std::nullopt;
  auto find = [&](const std::optional<std::string>& pattern) -> std::optional<std::size_t> {
    if (!pattern) return std::nullopt;
    const std::string folded = lowercase(*pattern);
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (pattern_matches(folded, sorted[i].id)) return i;
    }
    return std::nullopt;
  };
  const bool saved_var = in.entry_default && lowercase(*in.entry_default) == "@saved";
  const bool saved_conf = in.conf.default_pattern && *in.conf.default_pattern == "@saved";
  if (auto i = find(in.one_shot)) return Selection{*i, ChosenBy::OneShot};
  if (auto i = find(saved_var ? in.last_booted : in.entry_default)) {
    return Selection{*i, saved_var ? ChosenBy::SavedEntry : ChosenBy::DefaultVariable};
  }
  if (saved_conf) {
    if (auto i = saved_var ? std::nullopt : find(in.last_booted)) {
      return Selection{*i, ChosenBy::SavedEntry};
    }
  } else if (auto i = find(in.conf.default_pattern)) {
    return Selection{*i, ChosenBy::DefaultPattern};
  }
  return Selection{0, ChosenBy::FirstEntry};
}

std::string_view to_string(BlessOutcome outcome) {
  switch (outcome) {
    case BlessOutcome::Renamed:
      return "blessed";
    case BlessOutcome::RenamedFromBad:
      return "blessed-from-bad";
    case BlessOutcome::AlreadyGood:
      return "already-good";
    case BlessOutcome::Gone:
      return "entry-file-gone";
    case BlessOutcome::NoCounter:
      return "no-counter";
  }
  return "?";
}

std::optional<BlessPlan> plan_bless(std::string_view boot_count_file) {
  // bless-boot takes the last '+' of the last path component; the rest is prefix and suffix.
  const auto plus = boot_count_file.rfind('+');
  if (plus == std::string_view::npos) return std::nullopt;
  std::size_t pos = plus + 1;
  int left = 0;
  int done = 0;
  if (!take_number(boot_count_file, pos, left)) return std::nullopt;
  if (pos < boot_count_file.size() && boot_count_file[pos] == '-') {
    ++pos;
    if (!take_number(boot_count_file, pos, done)) return std::nullopt;
  }
  const std::string prefix(boot_count_file.substr(0, plus));
  const std::string suffix(boot_count_file.substr(pos));
  BlessPlan plan;
  plan.source = std::string(boot_count_file);
  plan.target = prefix + suffix;
  plan.bad_source =
      done == 0 ? prefix + "+0" + suffix : prefix + "+0-" + std::to_string(done) + suffix;
  return plan;
}

}  // namespace bootsim

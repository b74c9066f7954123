#include "core/json_fields.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/utf8.hpp"

namespace bootstate {

// Both are called for every object of a plan (3,000 steps in the benchmark's): appended by hand,
// fmt::format cost more than the rest of the path handling.
std::string json_index_path(std::string_view path, std::size_t index) {
  char digits[24];
  char* end = std::to_chars(digits, digits + sizeof digits, index).ptr;
  std::string result;
  result.reserve(path.size() + static_cast<std::size_t>(end - digits) + 2);
  result.append(path);
  result += '[';
  result.append(digits, end);
  result += ']';
  return result;
}

std::string json_member_path(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string result;
  result.reserve(path.size() + 1 + key.size());
  result.append(path);
  result += '.';
  result.append(key);
  return result;
}

std::string_view json_type_name(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "unknown";
}

std::pair<std::size_t, std::size_t> json_line_column(std::string_view text, std::size_t offset) {
  // Line and column are what an editor shows; the byte offset alone is hard to find.
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

namespace {

// The position of the first `"` or `\\` at or after `from`, or text.size().
std::size_t next_quote_or_backslash(std::string_view text, std::size_t from) {
  const char* const data = text.data();
  std::size_t at = from;
  if (at >= text.size()) return text.size();
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; at + 16 <= text.size(); at += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + at));
    const int mask = _mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)));
    if (mask != 0) return at + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  for (; at < text.size(); ++at) {
    if (data[at] == '"' || data[at] == '\\') return at;
  }
  return at;
}

}  // namespace

JsonNumberLimit json_number_limit(std::string_view number) {
  if (number.size() > kMaxJsonNumberLength) return JsonNumberLimit::TooLong;
  const std::size_t e = number.find_first_of("eE");
  if (e == std::string_view::npos) return JsonNumberLimit::Within;
  std::string_view exponent = number.substr(e + 1);
  if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.remove_prefix(1);
  return exponent.size() > kMaxJsonExponentDigits ? JsonNumberLimit::LongExponent
                                                  : JsonNumberLimit::Within;
}

Expected<void> check_json_limits(std::string_view text, std::string_view source) {
  // One pass, no recursion: inside a string only `\\` (escapes the next byte) and `"` (ends it)
  // matter. Up to the first syntax error the text is a valid JSON prefix, so the parser nests
  // exactly as deep, and reads the same numbers, as counted here; after it, the parser has stopped.
  auto refuse = [&](std::size_t at, std::string_view what) -> Expected<void> {
    const auto [line, column] = json_line_column(text, at);
    return make_error(ErrorCode::InvalidInput, "{}:{}:{}: {}", source, line, column, what);
  };
  auto number_char = [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  };
  // What each byte outside a string is to this check; the rest (whitespace, `:`, `,`, the
  // letters of true/false/null) is skipped in a tight loop.
  enum : std::uint8_t { kOther, kQuote, kOpen, kClose, kNumber };
  static constexpr auto kClass = [] {
    std::array<std::uint8_t, 256> table{};
    table['"'] = kQuote;
    table['['] = table['{'] = kOpen;
    table[']'] = table['}'] = kClose;
    table['-'] = kNumber;
    for (char digit = '0'; digit <= '9'; ++digit)
      table[static_cast<unsigned char>(digit)] = kNumber;
    return table;
  }();
  const std::size_t size = text.size();
  std::size_t depth = 0;
  std::size_t i = 0;
  while (i < size) {
    const std::uint8_t kind = kClass[static_cast<unsigned char>(text[i])];
    if (kind == kOther) {
      ++i;
      // Runs of spaces (indentation, a laid-out slot's padding) eight bytes at a time.
      i = static_cast<std::size_t>(past_spaces(text.data() + i, text.data() + size) - text.data());
    } else if (kind == kQuote) {
      // Inside a string only `\\` (escapes the next byte) and `"` (ends it) matter.
      std::size_t at = next_quote_or_backslash(text, i + 1);
      while (at < size && text[at] == '\\') at = next_quote_or_backslash(text, at + 2);
      if (at >= size) break;  // unterminated: the parser reports it
      i = at + 1;
    } else if (kind == kOpen) {
      if (++depth > kMaxJsonDepth) {
        return refuse(
            i, fmt::format("arrays and objects nested deeper than {} levels", kMaxJsonDepth));
      }
      ++i;
    } else if (kind == kClose) {
      if (depth > 0) --depth;
      ++i;
    } else {
      std::size_t end = i;
      while (end < size && number_char(text[end])) ++end;
      const std::string_view number = text.substr(i, end - i);
      switch (json_number_limit(number)) {
        case JsonNumberLimit::Within:
          break;
        case JsonNumberLimit::TooLong:
          return refuse(i, fmt::format("a number longer than {} characters", kMaxJsonNumberLength));
        case JsonNumberLimit::LongExponent:
          return refuse(i, fmt::format("a number with an exponent of more than {} digits",
                                       kMaxJsonExponentDigits));
      }
      i = end;
    }
  }
  return {};
}

namespace {

Expected<void> parse_result(std::string_view text, std::string_view source,
                            const rapidjson::Document& document) {
  if (document.HasParseError()) {
    const auto [line, column] = json_line_column(text, document.GetErrorOffset());
    return make_error(ErrorCode::InvalidInput, "{}:{}:{}: not valid JSON: {}", source, line, column,
                      rapidjson::GetParseError_En(document.GetParseError()));
  }
  return {};
}

}  // namespace

Expected<void> parse_json_document(std::string_view text, std::string_view source,
                                   rapidjson::Document& document) {
  BOOTSTATE_TRY(check_json_limits(text, source));
  document.Parse(text.data(), text.size());
  return parse_result(text, source, document);
}

Expected<void> parse_json_document_in_place(std::string_view text, std::string_view source,
                                            rapidjson::Document& document, std::string& buffer) {
  // In situ the text ends at its first NUL, where Parse() with a length rejects a NUL inside:
  // such a text takes the copying parse, so both read the same texts the same way.
  if (text.find('\0') != std::string_view::npos) {
    return parse_json_document(text, source, document);
  }
  BOOTSTATE_TRY(check_json_limits(text, source));
  buffer.assign(text);
  document.ParseInsitu(buffer.data());
  return parse_result(text, source, document);  // line:column from the text as it was
}

namespace {

Expected<void> check_string(std::string_view text, std::string_view path, std::string_view what) {
  const std::size_t valid = valid_utf8_prefix(text);
  if (valid < text.size()) {
    return make_error(ErrorCode::InvalidInput, "{}: {}not valid UTF-8 (byte {})", path, what,
                      valid);
  }
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(ErrorCode::InvalidInput, "{}: {}contains a NUL byte (byte {})", path, what,
                      nul);
  }
  return {};
}

std::string_view string_of(const rapidjson::Value& value) {
  return {value.GetString(), value.GetStringLength()};
}

bool clean_string(std::string_view text) {
  // Nearly every string of a plan is short and ASCII: one pass over its bytes, eight at a time,
  // without the two calls (UTF-8 check, NUL search) that cost more than the bytes
  // (docs/PERFORMANCE.md "(e)").
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  bool plain = true;
  std::size_t at = 0;
  for (std::uint64_t word = 0; plain && at + sizeof word <= text.size(); at += sizeof word) {
    std::memcpy(&word, text.data() + at, sizeof word);
    // No byte with its high bit set, and no zero byte (the classic test: a zero byte is the
    // only one whose high bit the subtraction sets that was not set before).
    plain = ((word | ((word - kOnes) & ~word)) & kHighBits) == 0;
  }
  for (; plain && at < text.size(); ++at) {
    const auto byte = static_cast<unsigned char>(text[at]);
    plain = byte != 0 && byte < 0x80;  // neither NUL nor part of a multi-byte sequence
  }
  if (plain) return true;
  return is_valid_utf8(text) && text.find('\0') == std::string_view::npos;
}

// The common case, without building a path for each value: a plan of 3,000 steps has tens of
// thousands of them.
bool all_strings_clean(const rapidjson::Value& value) {
  if (value.IsString()) return clean_string(string_of(value));
  if (value.IsArray()) {
    for (const auto& element : value.GetArray()) {
      if (!all_strings_clean(element)) return false;
    }
  } else if (value.IsObject()) {
    for (const auto& member : value.GetObject()) {
      if (!clean_string(string_of(member.name)) || !all_strings_clean(member.value)) return false;
    }
  }
  return true;
}

Expected<void> find_unclean_string(const rapidjson::Value& value, const std::string& path) {
  const std::string_view shown = path.empty() ? "(top level)" : std::string_view(path);
  if (value.IsString()) return check_string(string_of(value), shown, "");
  if (value.IsArray()) {
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      BOOTSTATE_TRY(find_unclean_string(value[i], json_index_path(path, i)));
    }
  } else if (value.IsObject()) {
    for (const auto& member : value.GetObject()) {
      const std::string_view key = string_of(member.name);
      // The key goes into messages only once it is known to be printable as it is.
      BOOTSTATE_TRY(check_string(key, shown, "a key "));
      BOOTSTATE_TRY(find_unclean_string(member.value, json_member_path(path, key)));
    }
  }
  return {};
}

}  // namespace

Expected<void> check_json_strings(const rapidjson::Value& value, const std::string& path) {
  if (all_strings_clean(value)) return {};
  return find_unclean_string(value, path);
}

std::string json_to_text(const rapidjson::Value& value, rapidjson::StringBuffer& buffer) {
  buffer.Clear();
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string json_to_text(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  return json_to_text(value, buffer);
}

Expected<FieldReader> FieldReader::open(const rapidjson::Value& value, std::string path) {
  if (!value.IsObject()) {
    return make_error(ErrorCode::InvalidInput, "{}: expected an object, found {}",
                      path.empty() ? "(top level)" : path, json_type_name(value));
  }
  // Plan objects have a dozen keys: comparing each with the ones before it is cheaper than
  // building a set for each of thousands of objects. Large objects are sorted instead.
  auto key_of = [](const rapidjson::Value::Member& member) {
    return std::string_view(member.name.GetString(), member.name.GetStringLength());
  };
  auto duplicate = [&](std::string_view key) {
    return make_error(ErrorCode::InvalidInput, "{}: duplicate key", json_member_path(path, key));
  };
  const auto begin = value.MemberBegin();
  const auto count = static_cast<std::size_t>(value.MemberCount());
  if (count <= 32) {
    for (std::size_t i = 1; i < count; ++i) {
      const std::string_view key = key_of(begin[i]);
      for (std::size_t j = 0; j < i; ++j) {
        if (key_of(begin[j]) == key) return duplicate(key);
      }
    }
  } else {
    // The first key that repeats an earlier one, as the pairwise check above reports it.
    std::vector<std::pair<std::string_view, std::size_t>> keys;
    keys.reserve(count);
    for (std::size_t i = 0; i < count; ++i) keys.emplace_back(key_of(begin[i]), i);
    std::sort(keys.begin(), keys.end());
    std::size_t first_repeat = count;
    for (std::size_t i = 1; i < keys.size(); ++i) {
      if (keys[i].first == keys[i - 1].first) first_repeat = std::min(first_repeat, keys[i].second);
    }
    if (first_repeat < count) return duplicate(key_of(begin[first_repeat]));
  }
  return FieldReader(value, std::move(path));
}

Error FieldReader::error_at(std::string_view key, std::string_view message) const {
  return make_error(ErrorCode::InvalidInput, "{}: {}", path_of(key), message);
}

const rapidjson::Value* FieldReader::get(std::string_view key) const {
  auto found = value_->FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  return found == value_->MemberEnd() ? nullptr : &found->value;
}

bool FieldReader::has(std::string_view key) const {
  return get(key) != nullptr;
}

Expected<void> FieldReader::reject_unknown(std::initializer_list<std::string_view> allowed) const {
  return reject_unknown(allowed.begin(), allowed.size());
}

Expected<void> FieldReader::reject_unknown(const std::vector<std::string_view>& allowed) const {
  return reject_unknown(allowed.data(), allowed.size());
}

Expected<void> FieldReader::reject_unknown(const std::string_view* allowed,
                                           std::size_t count) const {
  for (const auto& member : value_->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    if (std::find(allowed, allowed + count, key) == allowed + count) {
      return error_at(key, "unknown key");
    }
  }
  return {};
}

Expected<std::string> FieldReader::required_string(std::string_view key) const {
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return error_at(key, "missing (required)");
  if (!value->IsString()) {
    return error_at(key, fmt::format("expected a string, found {}", json_type_name(*value)));
  }
  return std::string(value->GetString(), value->GetStringLength());
}

Expected<std::string> FieldReader::optional_string(std::string_view key,
                                                   std::string fallback) const {
  if (!has(key)) return fallback;
  return required_string(key);
}

Expected<bool> FieldReader::optional_bool(std::string_view key, bool fallback) const {
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return fallback;
  if (!value->IsBool()) {
    return error_at(key, fmt::format("expected a boolean, found {}", json_type_name(*value)));
  }
  return value->GetBool();
}

Expected<std::int64_t> FieldReader::required_integer(std::string_view key) const {
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return error_at(key, "missing (required)");
  if (!value->IsInt64()) {
    return error_at(key, fmt::format("expected an integer, found {}", json_type_name(*value)));
  }
  return value->GetInt64();
}

Expected<std::optional<std::int64_t>> FieldReader::optional_integer(std::string_view key) const {
  if (!has(key)) return std::optional<std::int64_t>{};
  auto value = required_integer(key);
  if (!value) return value.error();
  return std::optional<std::int64_t>{*value};
}

Expected<std::vector<std::string>> FieldReader::string_array(std::string_view key) const {
  std::vector<std::string> result;
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return result;
  if (!value->IsArray()) {
    return error_at(key, fmt::format("expected an array, found {}", json_type_name(*value)));
  }
  for (rapidjson::SizeType i = 0; i < value->Size(); ++i) {
    const rapidjson::Value& item = (*value)[i];
    if (!item.IsString()) {
      return make_error(ErrorCode::InvalidInput, "{}: expected a string, found {}",
                        json_index_path(path_of(key), i), json_type_name(item));
    }
    result.emplace_back(item.GetString(), item.GetStringLength());
  }
  return result;
}

Expected<std::vector<std::pair<std::string, std::string>>> FieldReader::string_map(
    std::string_view key) const {
  std::vector<std::pair<std::string, std::string>> result;
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return result;
  auto object = FieldReader::open(*value, path_of(key));
  if (!object) return object.error();
  for (const auto& member : value->GetObject()) {
    std::string name(member.name.GetString(), member.name.GetStringLength());
    if (!member.value.IsString()) {
      return object->error_at(
          name, fmt::format("expected a string, found {}", json_type_name(member.value)));
    }
    result.emplace_back(name,
                        std::string(member.value.GetString(), member.value.GetStringLength()));
  }
  return result;
}

Expected<const rapidjson::Value*> FieldReader::optional_array(std::string_view key) const {
  const rapidjson::Value* value = get(key);
  if (value == nullptr) return value;
  if (!value->IsArray()) {
    return error_at(key, fmt::format("expected an array, found {}", json_type_name(*value)));
  }
  return value;
}

}  // namespace bootstate

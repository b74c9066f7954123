// check_json_limits skips string contents with memchr (most of a state's bytes are recorded
// definitions inside strings). It must refuse exactly what the plain byte-by-byte scan refused,
// at the same place: compared here on random texts over the bytes that matter.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "core/json_fields.hpp"

namespace bootstate {
namespace {

// The scan before memchr, kept as the reference: 0 when accepted, else 1 + the offset where
// nesting went too deep (numbers never matter to the texts generated below).
std::size_t reference_depth_refusal(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i + 1;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return 0;
}

TEST_CASE("check_json_limits: strings skipped with memchr end where the byte scan ended them") {
  std::mt19937 random(20261204);
  // Runs of brackets long enough to reach the limit, between quotes, backslashes and closers.
  const std::string pieces[] = {"\"", "\\", "\\\"", "]", "}", "a", " "};
  std::size_t refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const std::size_t tokens = random() % 40;
    for (std::size_t i = 0; i < tokens; ++i) {
      if (random() % 3 == 0) {
        text.append(random() % 70, random() % 2 ? '[' : '{');
      } else {
        text += pieces[random() % std::size(pieces)];
      }
    }
    const std::size_t expected = reference_depth_refusal(text);
    auto result = check_json_limits(text, "t");
    INFO(text);
    REQUIRE(result.has_value() == (expected == 0));
    if (expected != 0) {
      ++refused;
      // The message names line 1 and the column of the bracket that went too deep.
      CHECK(result.error().message.find("t:1:" + std::to_string(expected) + ": arrays") == 0);
    }
  }
  CHECK(refused > 100);  // the generator does reach the limit
}

TEST_CASE("check_json_limits: escaped quotes, backslash runs, unterminated strings") {
  const std::string deep(kMaxJsonDepth + 1, '[');
  CHECK_FALSE(check_json_limits(deep, "t"));
  CHECK(check_json_limits("\"" + deep + "\"", "t"));          // inside a string
  CHECK(check_json_limits("\"\\\"" + deep + "\"", "t"));      // after an escaped quote
  CHECK_FALSE(check_json_limits("\"\\\\\"" + deep, "t"));     // \\" ends the string
  CHECK(check_json_limits("\"\\\\\\\"" + deep + "\"", "t"));  // \\\" does not
  CHECK(check_json_limits("\"never ends " + deep, "t"));      // the parser reports that
}

}  // namespace
}  // namespace bootstate

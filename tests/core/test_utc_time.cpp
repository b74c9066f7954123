// utc_text is what `status` and the lock's waiter print for a time; it replaced gmtime_r +
// strftime in `status` (which read /etc/localtime) and must print exactly what they printed.
#include <doctest/doctest.h>

#include <ctime>
#include <string>

#include "core/utc_time.hpp"

namespace bootstate::test {
namespace {

std::string with_strftime(std::int64_t seconds) {
  const std::time_t time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

}  // namespace

TEST_CASE("utc_text prints what gmtime_r and strftime print") {
  CHECK(utc_text(0) == "1970-01-01 00:00:00 UTC");
  CHECK(utc_text(1'700'000'000) == "2023-11-14 22:13:20 UTC");
  CHECK(utc_text(951'782'400) == "2000-02-29 00:00:00 UTC");  // a leap day of a century year
  // Every ~3.7 days from 1970 to 2200: leap years, month and day ends, past 2038.
  for (std::int64_t seconds = 0; seconds < 7'258'118'400; seconds += 321'987) {
    INFO(seconds);
    CHECK(utc_text(seconds) == with_strftime(seconds));
    CHECK(utc_text(seconds + 86'399) == with_strftime(seconds + 86'399));
  }
}

}  // namespace bootstate::test

// A time as every message and `status` print it: "2026-12-05 19:07:32 UTC".
#pragma once

#include <cstdint>
#include <string>

namespace bootstate {

// `seconds` since the epoch, in UTC. Computed with <chrono>'s calendar, not gmtime_r/strftime:
// glibc initialises the time zone on their first call (it reads /etc/localtime, seven system
// calls) even for UTC.
std::string utc_text(std::int64_t seconds);

}  // namespace bootstate

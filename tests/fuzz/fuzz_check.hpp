// A property check for fuzz targets: a violated property aborts, which libFuzzer reports as a
// crash with the input that caused it (assert() would vanish under NDEBUG).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, what)                                           \
  do {                                                                        \
    if (!(condition)) {                                                       \
      std::fprintf(stderr, "property violated: %s (%s)\n", what, #condition); \
      std::abort();                                                           \
    }                                                                         \
  } while (false)

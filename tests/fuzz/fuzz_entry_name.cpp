// libFuzzer target: boot loader entry names and the entry/loader.conf lines bootstate reads
// (bootloader/entry_name.cpp).
// Properties: a parsed name composes to a file name that parses to the same name (renames must
// not change what they do not mean to change; the text may differ only in spelling the counter:
// "+03" is read as 3, as systemd-boot reads it, and composed as "+3"), and the good/bad/re-armed
// names of a parsed name parse back to the same id and suffix with the counter they were given.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bootloader/entry_name.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)bootstate::entry_generation(text);
  (void)bootstate::cmdline_generation(text);
  (void)bootstate::parse_loader_conf(text);

  auto name = bootstate::parse_entry_name(text);
  if (!name) return 0;
  auto reparse = [](const bootstate::EntryName& composed) {
    auto parsed = bootstate::parse_entry_name(bootstate::compose_entry_name(composed));
    FUZZ_CHECK(parsed.has_value(), "a composed name does not parse");
    FUZZ_CHECK(*parsed == composed, "a composed name parses to another name");
  };
  reparse(*name);
  if (!name->counter) FUZZ_CHECK(bootstate::compose_entry_name(*name) == text, "a name changed");
  const bootstate::EntryName good = bootstate::good_entry_name(*name);
  FUZZ_CHECK(!good.counter.has_value(), "a good name keeps a counter");
  // A good name without a counter whose id itself ends in "+N" would read back as a counter:
  // parse_entry_name documents that, so only names that cannot be misread are re-parsed.
  if (name->id.find('+') == std::string::npos) {
    reparse(good);
    reparse(bootstate::bad_entry_name(*name, name->counter ? name->counter->done_or_zero() : 0));
    reparse(bootstate::rearmed_entry_name(*name, 3));
  }
  return 0;
}

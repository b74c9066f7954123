// A strict, synchronous BootLoader for engine and CLI tests: it records every call in order,
// models the booted entry's counter the way systemd-boot names would change, and rejects what
// the real SystemdBoot would reject (so a test cannot pass on a call the machine refuses).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/interfaces.hpp"

namespace bootstate {

class FakeBootLoader final : public BootLoader {
 public:
  // One recorded effect: "mark_bad", "rearm", "mark_good", "set_one_shot:<id>",
  // "rearm_generation:<entry id>".
  using Call = std::string;

  // Booted entry `id` with boot counting Active and LEFT/DONE as systemd-boot left them;
  // `tries` is what rearm() restores.
  static FakeBootLoader counting(std::string id, int tries_left, int tries_done, int tries = 3);
  // Booted entry without counter.
  static FakeBootLoader counting_off(std::string id);
  // Not booted by systemd-boot.
  static FakeBootLoader impossible(std::string why = "no LoaderEntrySelected EFI variable");

  // generation (toplevel path) → entry id; entries known here are valid set_one_shot targets.
  void add_entry(std::string generation, std::string entry_id);
  // The entry of `generation` (added with add_entry) is named bad (+0-DONE), as systemd-boot
  // or an earlier mark_bad left it; rearm_generation() re-arms it.
  void set_entry_bad(std::string generation);
  bool entry_is_bad(const std::string& generation) const { return bad_.count(generation) != 0; }
  // The next call of `method` ("booted_entry", "mark_bad", …) fails once with `error`
  // (simulates an unreadable efivar or a failed rename).
  void fail_next(std::string method, Error error);

  Expected<BootedEntry> booted_entry() override;
  Expected<std::optional<std::string>> entry_for_generation(std::string_view generation) override;
  // Errors (Unsupported) unless counting is Active, like SystemdBoot.
  Expected<void> mark_bad() override;
  Expected<void> rearm() override;
  // Errors (Unsupported) when counting is Impossible; Off or already good succeeds.
  Expected<void> mark_good() override;
  // NotFound unless `entry_id` was added with add_entry() or is the booted entry.
  Expected<void> set_one_shot(std::string_view entry_id) override;
  // The bad entry of `generation` → "<id>+TRIES-0" (returned); nothing when it is not bad.
  Expected<std::vector<std::string>> rearm_generation(std::string_view generation) override;

  // Every successful effect, in order.
  const std::vector<Call>& calls() const { return calls_; }
  // The booted entry as it is now (after marks and re-arms).
  const BootedEntry& booted() const { return booted_; }
  // LoaderEntryOneShot as set, nullopt when never set.
  const std::optional<std::string>& one_shot() const { return one_shot_; }
  // Whether the booted entry is currently marked good (no counter), bad (+0-N) or neither.
  bool is_good() const { return good_; }
  bool is_bad() const { return !good_ && booted_.tries_left == 0; }

 private:
  FakeBootLoader() = default;
  std::optional<Error> take_failure(std::string_view method);
  Expected<void> require_active(std::string_view verb) const;

  BootedEntry booted_;
  int tries_ = 3;
  bool good_ = false;
  int done_when_good_ = 0;  // tries done when it was blessed, for a later mark_bad
  std::map<std::string, std::string> entries_;  // generation → entry id
  std::set<std::string> bad_;                   // generations whose entry is +0-DONE
  std::map<std::string, Error> failures_;
  std::vector<Call> calls_;
  std::optional<std::string> one_shot_;
};

}  // namespace bootstate

#include "tests/support/fake_boot_loader.hpp"

#include <utility>

namespace bootstate {

FakeBootLoader FakeBootLoader::counting(std::string id, int tries_left, int tries_done, int tries) {
  FakeBootLoader fake;
  fake.booted_ = BootedEntry{std::move(id), BootCounting::Active, tries_left, tries_done, ""};
  fake.tries_ = tries;
  return fake;
}

FakeBootLoader FakeBootLoader::counting_off(std::string id) {
  FakeBootLoader fake;
  fake.booted_ = BootedEntry{std::move(id), BootCounting::Off, -1, -1,
                             "entry has no boot counter (no LoaderBootCountPath variable)"};
  fake.good_ = true;
  return fake;
}

FakeBootLoader FakeBootLoader::impossible(std::string why) {
  FakeBootLoader fake;
  fake.booted_ = BootedEntry{"", BootCounting::Impossible, -1, -1, std::move(why)};
  return fake;
}

void FakeBootLoader::add_entry(std::string generation, std::string entry_id) {
  entries_[std::move(generation)] = std::move(entry_id);
}

void FakeBootLoader::set_entry_bad(std::string generation) {
  bad_.insert(std::move(generation));
}

void FakeBootLoader::fail_next(std::string method, Error error) {
  failures_.insert_or_assign(std::move(method), std::move(error));
}

std::optional<Error> FakeBootLoader::take_failure(std::string_view method) {
  auto it = failures_.find(std::string(method));
  if (it == failures_.end()) return std::nullopt;
  Error error = std::move(it->second);
  failures_.erase(it);
  return error;
}

Expected<void> FakeBootLoader::require_active(std::string_view verb) const {
  if (booted_.counting == BootCounting::Active) return {};
  return make_error(ErrorCode::Unsupported, "fake boot loader: cannot {} entry \"{}\": {}", verb,
                    booted_.id, booted_.why);
}

Expected<BootedEntry> FakeBootLoader::booted_entry() {
  if (auto failure = take_failure("booted_entry")) return *failure;
  return booted_;
}

Expected<std::optional<std::string>> FakeBootLoader::entry_for_generation(
    std::string_view generation) {
  if (auto failure = take_failure("entry_for_generation")) return *failure;
  auto it = entries_.find(std::string(generation));
  if (it == entries_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Expected<void> FakeBootLoader::mark_bad() {
  if (auto failure = take_failure("mark_bad")) return *failure;
  BOOTSTATE_TRY(require_active("mark bad"));
  if (good_) {
    booted_.tries_done = done_when_good_;
    good_ = false;
  }
  booted_.tries_left = 0;
  calls_.push_back("mark_bad");
  return {};
}

Expected<void> FakeBootLoader::rearm() {
  if (auto failure = take_failure("rearm")) return *failure;
  BOOTSTATE_TRY(require_active("re-arm"));
  good_ = false;
  booted_.tries_left = tries_;
  booted_.tries_done = 0;
  calls_.push_back("rearm");
  return {};
}

Expected<void> FakeBootLoader::mark_good() {
  if (auto failure = take_failure("mark_good")) return *failure;
  if (booted_.counting == BootCounting::Impossible) {
    return make_error(ErrorCode::Unsupported, "fake boot loader: cannot mark good: {}",
                      booted_.why);
  }
  if (!good_) {
    done_when_good_ = booted_.tries_done;
    good_ = true;
    booted_.tries_left = -1;
    booted_.tries_done = -1;
  }
  calls_.push_back("mark_good");
  return {};
}

Expected<void> FakeBootLoader::set_one_shot(std::string_view entry_id) {
  if (auto failure = take_failure("set_one_shot")) return *failure;
  bool known = !booted_.id.empty() && booted_.id == entry_id;
  for (const auto& [generation, id] : entries_) known = known || id == entry_id;
  if (!known) {
    return make_error(ErrorCode::NotFound, "fake boot loader: no entry \"{}\" for one-shot",
                      entry_id);
  }
  one_shot_ = std::string(entry_id);
  calls_.push_back("set_one_shot:" + std::string(entry_id));
  return {};
}

Expected<std::vector<std::string>> FakeBootLoader::rearm_generation(std::string_view generation) {
  if (auto failure = take_failure("rearm_generation")) return *failure;
  const std::string key(generation);
  auto entry = entries_.find(key);
  if (entry == entries_.end() || bad_.erase(key) == 0) return std::vector<std::string>();
  calls_.push_back("rearm_generation:" + entry->second);
  return std::vector<std::string>{fmt::format("{}+{}-0.conf", entry->second, tries_)};
}

}  // namespace bootstate

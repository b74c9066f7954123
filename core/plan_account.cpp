// The `user` and `group` of a command step or a check (docs/DESIGN.md "Steps as a user").
#include <algorithm>
#include <charconv>

#include "core/plan_rules.hpp"

namespace bootstate {

std::optional<std::uint32_t> numeric_account(std::string_view account) {
  std::uint32_t id = 0;
  const char* end = account.data() + account.size();
  auto [stop, error] = std::from_chars(account.data(), end, id);
  // (uid_t)-1 means "unchanged" to setuid/chown: never an id a step can run as.
  if (account.empty() || error != std::errc() || stop != end || id == UINT32_MAX) {
    return std::nullopt;
  }
  return id;
}

std::string account_problem(std::string_view account, Phase phase) {
  const bool digits = !account.empty() && std::all_of(account.begin(), account.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    return numeric_account(account) ? "" : "a numeric id must be between 0 and 4294967294";
  }
  if (phase != Phase::PostActivation) {
    return fmt::format(
        "\"{}\": in phase {} only a numeric id is allowed (names are resolved in stage 2; the "
        "initrd's account database is not the system's)",
        account, to_string(phase));
  }
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  std::string_view name = account;
  if (name.size() > 1 && name.back() == '$') name.remove_suffix(1);  // a Samba machine account
  const bool valid = !name.empty() && name.size() <= 32 && letter(name[0]) &&
                     std::all_of(name.begin() + 1, name.end(), [&](char c) {
                       return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
                     });
  return valid ? ""
               : fmt::format("\"{}\" is neither a user or group name nor a numeric id", account);
}

Expected<void> read_account(const FieldReader& object, Phase phase, std::string& user,
                            std::string& group) {
  for (auto [key, field] : {std::pair{"user", &user}, {"group", &group}}) {
    auto account = object.optional_string(key);
    if (!account) return account.error();
    if (!object.has(key)) continue;
    if (std::string problem = account_problem(*account, phase); !problem.empty()) {
      return object.error_at(key, problem);
    }
    *field = std::move(*account);
  }
  return {};
}

}  // namespace bootstate

#include "stage2/account.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/plan_rules.hpp"
#include "stage2/fd.hpp"

namespace bootstate {
namespace {

// getpwnam_r / getpwuid_r with a buffer that grows (NSS modules may need more than the hint).
template <typename Lookup>
Expected<std::optional<passwd>> lookup_passwd(Lookup lookup, std::vector<char>& buffer,
                                              std::string_view what) {
  buffer.resize(4096);
  for (;;) {
    passwd entry{};
    passwd* found = nullptr;
    const int error = lookup(&entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1U << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (error != 0 && error != ENOENT && error != ESRCH) {
      return make_error(ErrorCode::Io, "cannot look up {}: {}", what, errno_text(error));
    }
    if (found == nullptr) return std::optional<passwd>();
    return std::optional<passwd>(entry);
  }
}

Expected<std::uint32_t> group_id(const std::string& group) {
  if (auto id = numeric_account(group)) return *id;
  std::vector<char> buffer(4096);
  for (;;) {
    struct group entry {};
    struct group* found = nullptr;
    const int error = ::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1U << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (error != 0 && error != ENOENT && error != ESRCH) {
      return make_error(ErrorCode::Io, "cannot look up group \"{}\": {}", group, errno_text(error));
    }
    if (found == nullptr) {
      return make_error(ErrorCode::Failed, "group \"{}\" does not exist (no group entry)", group);
    }
    return entry.gr_gid;
  }
}

std::vector<std::uint32_t> supplementary_groups(const char* name, std::uint32_t gid) {
  int count = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  while (::getgrouplist(name, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
  }
  groups.resize(static_cast<std::size_t>(count));
  return {groups.begin(), groups.end()};
}

}  // namespace

Expected<std::optional<StepAccount>> resolve_step_account(const CommandSpec& command, Phase phase) {
  return resolve_account(command.user, command.group, phase);
}

Expected<std::optional<StepAccount>> resolve_account(const std::string& user,
                                                     const std::string& group, Phase phase) {
  if (user.empty() && group.empty()) return std::optional<StepAccount>();
  StepAccount account;
  // The initrd's account database is not the system's: ids only, nothing looked up (the plan
  // parser refused names there).
  const bool stage2 = phase == Phase::PostActivation;
  if (!user.empty()) {
    const auto uid = numeric_account(user);
    std::vector<char> buffer;
    std::optional<passwd> entry;
    if (!uid) {
      auto found = lookup_passwd([&](passwd* e, char* b, std::size_t n,
                                     passwd** r) { return ::getpwnam_r(user.c_str(), e, b, n, r); },
                                 buffer, fmt::format("user \"{}\"", user));
      if (!found) return found.error();
      if (!*found) {
        return make_error(ErrorCode::Failed, "user \"{}\" does not exist (no passwd entry)", user);
      }
      entry = *found;
    } else if (stage2) {
      auto found = lookup_passwd([&](passwd* e, char* b, std::size_t n,
                                     passwd** r) { return ::getpwuid_r(*uid, e, b, n, r); },
                                 buffer, fmt::format("uid {}", *uid));
      if (!found) return found.error();
      entry = *found;
    }
    if (entry) {
      account.identity.uid = entry->pw_uid;
      account.identity.gid = entry->pw_gid;
      account.user_name = entry->pw_name;
      account.home = entry->pw_dir;
      account.identity.groups = supplementary_groups(entry->pw_name, entry->pw_gid);
    } else {
      account.identity.uid = *uid;
      account.identity.gid = *uid;
    }
  }
  if (!group.empty()) {
    auto gid = group_id(group);
    if (!gid) return gid.error();
    account.identity.gid = *gid;
    if (user.empty()) account.identity.groups.clear();  // root without root's groups
  }
  return std::optional<StepAccount>(std::move(account));
}

Expected<void> hand_work_dir_to(const std::string& work_dir, const ProcessIdentity& identity) {
  stage2::Fd directory(::open(work_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!directory.valid()) {
    return make_error(ErrorCode::Io, "cannot open the work directory {}: {}", work_dir,
                      errno_text(errno));
  }
  if (::fchown(directory.get(), identity.uid, identity.gid) != 0) {
    return make_error(ErrorCode::Io, "cannot give the work directory {} to uid {}: {}", work_dir,
                      identity.uid, errno_text(errno));
  }
  return {};
}

void set_account_environment(const StepAccount& account, std::vector<std::string>& environment,
                             const std::map<std::string, std::string>& set_by_plan) {
  std::vector<std::pair<std::string, std::string>> defaults;
  if (!account.home.empty()) defaults.emplace_back("HOME", account.home);
  if (!account.user_name.empty()) {
    defaults.emplace_back("USER", account.user_name);
    defaults.emplace_back("LOGNAME", account.user_name);
  }
  for (const auto& [key, value] : defaults) {
    if (set_by_plan.contains(key)) continue;
    const std::string prefix = key + "=";
    std::erase_if(environment, [&](const std::string& v) { return v.starts_with(prefix); });
    environment.push_back(prefix + value);
  }
}

}  // namespace bootstate

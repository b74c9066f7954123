// Who a command step runs as (docs/DESIGN.md "Steps as a user"): the plan's `user` and `group`
// resolved to ids, supplementary groups and a home directory, and the step's work directory
// handed to that user.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/interfaces.hpp"
#include "core/plan.hpp"

namespace bootstate {

struct StepAccount {
  ProcessIdentity identity;
  std::string user_name;  // the passwd name, empty when the uid has no entry
  std::string home;       // the passwd home, empty when the uid has no entry
};

// nullopt when the step names neither (it runs as bootstate: root). A name is looked up in the
// system's account database (NSS) — only in stage 2, where it is the system's; numbers are
// taken as they are, and in stage 2 a uid's passwd entry (when it has one) supplies the primary
// group, supplementary groups and home. Without a group a numeric user with no entry runs with
// gid = uid. Errors name the account: "user \"pgadmin\" does not exist (no passwd entry)".
Expected<std::optional<StepAccount>> resolve_step_account(const CommandSpec& command, Phase phase);
// The same for any `user`/`group` pair (a check's: docs/DESIGN.md "Checks run as a user").
Expected<std::optional<StepAccount>> resolve_account(const std::string& user,
                                                     const std::string& group, Phase phase);

// HOME, USER and LOGNAME of `account`'s passwd entry replace those of `environment`
// ("KEY=VALUE"), except the ones the plan sets itself (`set_by_plan`: a step's `environment`).
void set_account_environment(const StepAccount& account, std::vector<std::string>& environment,
                             const std::map<std::string, std::string>& set_by_plan);

// The step's work directory (created by bootstate, root's) becomes the step user's, so the step
// can write where BOOTSTATE_WORK_DIR points. Opened without following a symlink.
Expected<void> hand_work_dir_to(const std::string& work_dir, const ProcessIdentity& identity);

}  // namespace bootstate

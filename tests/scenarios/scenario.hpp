// A scenario: a temp --root tree, generations installed the nixpkgs way, and boots simulated
// by bootsim around the REAL bootstate binary (BOOTSTATE_BIN). Assertions read
// `bootstate --json status` (docs/DESIGN.md keys) and the entry file names on the ESP.
#pragma once

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "tests/bootsim/machine.hpp"
#include "tests/bootsim/tree.hpp"

namespace scenarios {

using bootsim::BootRecord;

// JSON building blocks for plans. `argv` elements may use @ROOT@ (the tree) and @TOPLEVEL@.
std::string command_step(const std::string& id, const std::string& phase,
                         const std::vector<std::string>& argv, const std::string& extra = "");
std::string migration(const std::string& id, const std::vector<std::string>& steps,
                      const std::string& extra = "");
std::string plan(const std::vector<std::string>& migrations);

// Dotted access into status JSON: "attempt.state"; "<missing>" when absent or null, numbers
// and booleans as text.
std::string at(const rapidjson::Value& value, const std::string& path);
// The element of array `path` whose "id" is `id`, or nullptr.
const rapidjson::Value* find_by_id(const rapidjson::Value& value, const std::string& path,
                                   const std::string& id);
// Any object anywhere in `value` with these key/value string pairs, or nullptr.
const rapidjson::Value* find_object(const rapidjson::Value& value,
                                    const std::vector<std::pair<std::string, std::string>>& keys);

class Scenario {
 public:
  explicit Scenario(const std::string& name);
  ~Scenario();
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  // Installs generation `name` ("/nix/store/<name>-nixos-system") with `plan_json` as its plan
  // and the entry counter `counter` ("+3-0", "+3", "" for none). Returns the toplevel.
  std::string install(const std::string& name, int number, const std::string& plan_json,
                      const std::string& counter = "+3-0");
  // One boot; REQUIREs that the simulation itself did not stop (bootstate exit 2, no entry).
  BootRecord boot();
  // `bootstate --json ARGS` (status by default), parsed; REQUIREs exit 0 and valid JSON.
  rapidjson::Document json(const std::vector<std::string>& args = {"status"});
  // The current file name of the entry that boots `toplevel`, or "<none>".
  std::string entry_file(const std::string& toplevel) const;

  std::string root() const { return tree.root; }
  std::string path(const std::string& relative) const { return tree.root + "/" + relative; }
  bool exists(const std::string& relative) const;
  std::string read(const std::string& relative) const;
  void write(const std::string& relative, const std::string& text) const;

  bootsim::TreeOptions tree;
  bootsim::SimOptions sim;
  std::vector<BootRecord> boots;
  std::string transcript;  // every summary line and status, printed when a check fails

 private:
  std::string name_;
};

}  // namespace scenarios

#include "tests/scenarios/scenario.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace scenarios {
namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

const rapidjson::Value* walk(const rapidjson::Value& value, const std::string& path) {
  const rapidjson::Value* current = &value;
  std::istringstream parts(path);
  std::string key;
  while (std::getline(parts, key, '.')) {
    if (!current->IsObject()) return nullptr;
    auto member = current->FindMember(key.c_str());
    if (member == current->MemberEnd()) return nullptr;
    current = &member->value;
  }
  return current;
}

}  // namespace

std::string command_step(const std::string& id, const std::string& phase,
                         const std::vector<std::string>& argv, const std::string& extra) {
  std::vector<std::string> quoted;
  for (const auto& arg : argv) quoted.push_back(quote(arg));
  return "{\"id\":" + quote(id) + ",\"phase\":" + quote(phase) +
         ",\"kind\":\"command\",\"timeout\":30,\"command\":[" + join(quoted) + "]" + extra + "}";
}

std::string migration(const std::string& id, const std::vector<std::string>& steps,
                      const std::string& extra) {
  return "{\"id\":" + quote(id) + ",\"description\":" + quote("scenario migration " + id) +
         ",\"policy\":\"required\",\"steps\":[" + join(steps) + "]" + extra + "}";
}

std::string plan(const std::vector<std::string>& migrations) {
  return "{\"schema\":1,\"generation\":\"@TOPLEVEL@\",\"migrations\":[" + join(migrations) + "]}";
}

std::string at(const rapidjson::Value& value, const std::string& path) {
  const rapidjson::Value* found = walk(value, path);
  if (found == nullptr || found->IsNull()) return "<missing>";
  if (found->IsString()) return found->GetString();
  if (found->IsBool()) return found->GetBool() ? "true" : "false";
  if (found->IsInt64()) return std::to_string(found->GetInt64());
  if (found->IsNumber()) return std::to_string(found->GetDouble());
  return "<object>";
}

const rapidjson::Value* find_by_id(const rapidjson::Value& value, const std::string& path,
                                   const std::string& id) {
  const rapidjson::Value* array = walk(value, path);
  if (array == nullptr || !array->IsArray()) return nullptr;
  for (const auto& item : array->GetArray()) {
    if (at(item, "id") == id) return &item;
  }
  return nullptr;
}

const rapidjson::Value* find_object(const rapidjson::Value& value,
                                    const std::vector<std::pair<std::string, std::string>>& keys) {
  if (value.IsObject()) {
    bool all = true;
    for (const auto& [key, expected] : keys) all = all && at(value, key) == expected;
    if (all) return &value;
    for (const auto& member : value.GetObject()) {
      if (const auto* found = find_object(member.value, keys)) return found;
    }
  } else if (value.IsArray()) {
    for (const auto& item : value.GetArray()) {
      if (const auto* found = find_object(item, keys)) return found;
    }
  }
  return nullptr;
}

Scenario::Scenario(const std::string& name) : name_(name) {
  std::string pattern =
      (fs::temp_directory_path() / ("bootstate-scenario-" + name + "-XXXXXX")).string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  tree.root = pattern;
  REQUIRE(bootsim::init_tree(tree));
  sim.loader = bootsim::loader_options(tree);
  sim.bootstate = BOOTSTATE_BIN;
}

Scenario::~Scenario() {
  if (std::getenv("BOOTSIM_VERBOSE") != nullptr) std::cout << "== " << name_ << "\n" << transcript;
  if (std::getenv("BOOTSIM_KEEP") != nullptr) {
    std::cout << "kept " << tree.root << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(tree.root, ec);
}

std::string Scenario::install(const std::string& name, int number, const std::string& plan_json,
                              const std::string& counter) {
  bootsim::GenerationSpec spec;
  spec.toplevel = "/nix/store/" + name + "-nixos-system";
  spec.number = number;
  spec.counter = counter;
  spec.plan_json = plan_json;
  auto file = bootsim::add_generation(tree, spec);
  REQUIRE_MESSAGE(file.has_value(), (file ? "" : file.error().message));
  transcript += "installed " + spec.toplevel + " as " + *file + "\n";
  return spec.toplevel;
}

BootRecord Scenario::boot() {
  auto record = bootsim::simulate_boot(sim, static_cast<int>(boots.size()) + 1);
  if (!record) transcript += "simulation stopped: " + record.error().message + "\n";
  REQUIRE_MESSAGE(record.has_value(), transcript);
  transcript += bootsim::summary_line(*record) + "\n";
  for (const auto& phase : record->phases) {
    if (phase.exit != 0 && !phase.output.empty()) {
      transcript += "  [" + std::string(bootsim::to_string(phase.phase)) + "] " + phase.output;
    }
  }
  boots.push_back(*record);
  return *record;
}

rapidjson::Document Scenario::json(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"--json"};
  full.insert(full.end(), args.begin(), args.end());
  auto result = bootsim::run_bootstate(sim, full);
  REQUIRE(result.has_value());
  transcript += "  status exit " + std::to_string(result->exit) + ": " + result->output + "\n";
  REQUIRE_MESSAGE(result->exit == 0, transcript);
  rapidjson::Document document;
  document.Parse(result->output.c_str());
  REQUIRE_MESSAGE(!document.HasParseError(), "not JSON: " << result->output);
  return document;
}

std::string Scenario::entry_file(const std::string& toplevel) const {
  const std::string id = bootsim::default_entry_id(toplevel);
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(bootsim::entries_dir(sim.loader), ec)) {
    const std::string name = item.path().filename().string();
    if (name == id + ".conf" || name.starts_with(id + "+")) return name;
  }
  return "<none>";
}

bool Scenario::exists(const std::string& relative) const {
  return fs::exists(path(relative));
}

std::string Scenario::read(const std::string& relative) const {
  std::ifstream in(path(relative), std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void Scenario::write(const std::string& relative, const std::string& text) const {
  fs::create_directories(fs::path(path(relative)).parent_path());
  std::ofstream out(path(relative), std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace scenarios

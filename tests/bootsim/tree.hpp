// Lays out a --root tree the way a NixOS machine with systemd-boot looks: an ESP with
// loader.conf, one Type #1 entry per generation named the nixpkgs way
// (nixos-<content-hash>+3-0.conf, `sort-key nixos`, `version Generation N …`,
// `options init=<toplevel>/init …`), the kernel and initrd files the entries name, and a
// toplevel directory per generation holding `bootstate/plan.json`.
#pragma once

#include <optional>
#include <string>

#include "core/error.hpp"
#include "tests/bootsim/firmware.hpp"

namespace bootsim {

struct TreeOptions {
  std::string root;
  std::string esp = "/boot";
  std::string boot;  // XBOOTLDR mount point: entries and kernels there; empty = on the ESP
  // loader.conf `default`. nixpkgs' pattern "nixos-*" matches every generation, so systemd-boot
  // takes the first in sort order (the newest good one; bad entries sort last).
  std::optional<std::string> default_pattern = std::string("nixos-*");
  std::string timeout = "0";
};

// Creates the ESP (loader/loader.conf, loader/entries, EFI/nixos), the efivarfs directory
// (the tree was booted through EFI), /proc, /run, /etc and /var/lib. Keeps what exists.
Expected<void> init_tree(const TreeOptions& options);

struct GenerationSpec {
  std::string toplevel;  // "/nix/store/<hash>-nixos-system-demo" (absolute, inside the tree)
  int number = 1;        // "Generation N" in the entry's version line
  // The counter the entry is installed with: "+3-0", "+3", or "" for none (no boot counting).
  std::string counter = "+3-0";
  // plan.json text; "@ROOT@" and "@TOPLEVEL@" are replaced by the tree path and `toplevel`.
  // Empty: the generation has no plan file.
  std::string plan_json;
  std::string entry_id;  // default: "nixos-" + a hash of `toplevel`
};

// Installs a generation: toplevel/init, toplevel/bootstate/plan.json, the kernel and initrd
// on the ESP, and the entry file. Returns the entry's file name. InvalidInput when an entry
// with the same id exists already (whatever its counter).
Expected<std::string> add_generation(const TreeOptions& options, const GenerationSpec& spec);

// "nixos-" + 12 hex digits derived from `toplevel` (stable, as nixpkgs' content hash is).
std::string default_entry_id(const std::string& toplevel);

// "@ROOT@" → root, "@TOPLEVEL@" → toplevel.
std::string substitute(std::string text, const std::string& root, const std::string& toplevel);

LoaderOptions loader_options(const TreeOptions& options);

}  // namespace bootsim

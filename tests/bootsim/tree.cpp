#include "tests/bootsim/tree.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

namespace bootsim {
namespace fs = std::filesystem;
using bootstate::ErrorCode;
using bootstate::make_error;

namespace {

Expected<void> write_file(const fs::path& file, const std::string& text) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec)
    return make_error(ErrorCode::Io, "create {}: {}", file.parent_path().string(), ec.message());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    return make_error(ErrorCode::Io, "write {}: {}", file.string(), bootstate::errno_text(errno));
  return {};
}

std::string replace_all(std::string text, std::string_view from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// Where entries and kernels go: $BOOT with XBOOTLDR, else the ESP.
fs::path partition_for_entries(const TreeOptions& options) {
  const std::string& mount = options.boot.empty() ? options.esp : options.boot;
  return fs::path(options.root) / mount.substr(mount.starts_with('/') ? 1 : 0);
}

}  // namespace

LoaderOptions loader_options(const TreeOptions& options) {
  LoaderOptions loader;
  loader.root = options.root;
  loader.esp = options.esp;
  loader.boot = options.boot;
  return loader;
}

std::string default_entry_id(const std::string& toplevel) {
  // FNV-1a, 48 bits shown: stands in for nixpkgs' hash of the entry's contents.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : toplevel) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return fmt::format("nixos-{:012x}", hash & 0xffffffffffffULL);
}

std::string substitute(std::string text, const std::string& root, const std::string& toplevel) {
  return replace_all(replace_all(std::move(text), "@ROOT@", root), "@TOPLEVEL@", toplevel);
}

Expected<void> init_tree(const TreeOptions& options) {
  const fs::path root = options.root;
  const fs::path esp = root / options.esp.substr(options.esp.starts_with('/') ? 1 : 0);
  const fs::path boot = partition_for_entries(options);
  std::error_code ec;
  for (const fs::path& dir : {esp / "loader", boot / "loader/entries", boot / "EFI/nixos",
                              root / "sys/firmware/efi/efivars", root / "proc/sys/kernel/random",
                              root / "run", root / "etc", root / "var/lib"}) {
    fs::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::Io, "create {}: {}", dir.string(), ec.message());
  }
  std::string conf = "timeout " + options.timeout + "\n";
  if (options.default_pattern) conf += "default " + *options.default_pattern + "\n";
  conf += "editor 0\nconsole-mode keep\n";
  return write_file(esp / "loader/loader.conf", conf);
}

Expected<std::string> add_generation(const TreeOptions& options, const GenerationSpec& spec) {
  if (!spec.toplevel.starts_with('/')) {
    return make_error(ErrorCode::InvalidInput, "toplevel {:?} is not absolute", spec.toplevel);
  }
  const fs::path root = options.root;
  const fs::path esp = partition_for_entries(options);  // the ESP, or $BOOT with XBOOTLDR
  const std::string id = spec.entry_id.empty() ? default_entry_id(spec.toplevel) : spec.entry_id;
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(esp / "loader/entries", ec)) {
    const std::string name = item.path().filename().string();
    if (name == id + ".conf" || name.starts_with(id + "+")) {
      return make_error(ErrorCode::InvalidInput, "an entry for {} exists already: {}", id, name);
    }
  }
  if (ec)
    return make_error(ErrorCode::Io, "list the entries of {}: {}", esp.string(), ec.message());

  const fs::path toplevel = root / spec.toplevel.substr(1);
  if (auto w = write_file(toplevel / "init", "#!/bin/sh\n# stands in for stage 2\n"); !w)
    return w.error();
  fs::permissions(toplevel / "init",
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                      fs::perms::others_read | fs::perms::others_exec,
                  ec);
  if (!spec.plan_json.empty()) {
    if (auto w = write_file(toplevel / "bootstate/plan.json",
                            substitute(spec.plan_json, options.root, spec.toplevel));
        !w) {
      return w.error();
    }
  }

  // nixpkgs names the kernel and initrd by store hash; one pair per generation is enough here.
  const std::string kernel = "/EFI/nixos/" + id + "-linux-6.1-bzImage.efi";
  const std::string initrd = "/EFI/nixos/" + id + "-initrd-linux-6.1-initrd.efi";
  if (auto w = write_file(esp / kernel.substr(1), "kernel\n"); !w) return w.error();
  if (auto w = write_file(esp / initrd.substr(1), "initrd\n"); !w) return w.error();

  const std::string file_name = id + spec.counter + ".conf";
  const std::string entry = fmt::format(
      "title NixOS\n"
      "version Generation {0} NixOS 24.11 (Linux 6.1.0), built on 2024-11-{1:02}\n"
      "linux {2}\n"
      "initrd {3}\n"
      "options init={4}/init root=LABEL=nixos loglevel=4\n"
      "machine-id 0123456789abcdef0123456789abcdef\n"
      "sort-key nixos\n",
      spec.number, 1 + spec.number % 28, kernel, initrd, spec.toplevel);
  if (auto w = write_file(esp / "loader/entries" / file_name, entry); !w) return w.error();
  return file_name;
}

}  // namespace bootsim

#include "tests/bootloader/tree.hpp"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "bootloader/efivars.hpp"

namespace bootstate::test {

namespace fs = std::filesystem;

Tree::Tree() {
  std::string pattern = (fs::temp_directory_path() / "bootstate-bootloader-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  root_ = pattern;
  fs::create_directories(entries_dir());
}

Tree::~Tree() {
  std::error_code ignored;
  fs::remove_all(root_, ignored);
}

void Tree::write(std::string_view relative, std::string_view contents) const {
  const fs::path path = fs::path(root_) / relative;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

std::optional<std::string> Tree::read(std::string_view relative) const {
  std::ifstream in(fs::path(root_) / relative, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool Tree::exists(std::string_view relative) const {
  return fs::exists(fs::path(root_) / relative);
}

void Tree::make_efi() const {
  fs::create_directories(fs::path(root_) / "sys/firmware/efi/efivars");
}

void Tree::set_loader_var(std::string_view name, std::string_view value) const {
  make_efi();
  write(std::string("sys/firmware/efi/efivars/") + std::string(name) + "-" +
            std::string(kLoaderVendorGuid),
        efivar_bytes(value));
}

std::optional<std::string> Tree::loader_var_bytes(std::string_view name) const {
  return read(std::string("sys/firmware/efi/efivars/") + std::string(name) + "-" +
              std::string(kLoaderVendorGuid));
}

void Tree::add_entry(std::string_view file_name, std::string_view generation) const {
  write("boot/loader/entries/" + std::string(file_name),
        "title NixOS\nversion Generation\nlinux /EFI/nixos/kernel.efi\n"
        "initrd /EFI/nixos/initrd.efi\noptions init=" +
            std::string(generation) + "/init loglevel=4\n");
}

std::vector<std::string> Tree::entry_files() const {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(entries_dir())) {
    names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> Tree::files_in(std::string_view relative) const {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(fs::path(root_) / relative, error)) {
    names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

constexpr const char* kEfiStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

// Runs argv (no shell); true when it exited 0.
bool run(const std::vector<std::string>& argv) {
  std::vector<char*> raw;
  for (const auto& arg : argv) raw.push_back(const_cast<char*>(arg.c_str()));
  raw.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

bool Tree::add_uki(std::string_view relative, std::string_view cmdline, std::string& why) const {
  if (!fs::exists(kEfiStub)) {
    why = std::string("no ") + kEfiStub + " (package systemd-boot-efi)";
    return false;
  }
  write(".uki/osrel", "ID=nixos\nPRETTY_NAME=\"NixOS\"\n");
  write(".uki/cmdline", cmdline);
  write(".uki/linux", std::string(4096, 'K'));
  const fs::path target = fs::path(root_) / relative;
  fs::create_directories(target.parent_path());
  // Section VMAs past the stub's own sections (its last ends below 0x1a000), as ukify places
  // them; objcopy keeps the file offsets consistent.
  const std::string dir = root_ + "/.uki/";
  if (!run({"objcopy", "--add-section", ".osrel=" + dir + "osrel", "--change-section-vma",
            ".osrel=0x20000", "--add-section", ".cmdline=" + dir + "cmdline",
            "--change-section-vma", ".cmdline=0x30000", "--add-section", ".linux=" + dir + "linux",
            "--change-section-vma", ".linux=0x2000000", kEfiStub, target.string()})) {
    why = "objcopy failed";
    return false;
  }
  return true;
}

std::string efivar_bytes(std::string_view ascii) {
  std::string bytes{'\x07', '\0', '\0', '\0'};
  for (char c : ascii) {
    bytes += c;
    bytes += '\0';
  }
  bytes += std::string(2, '\0');
  return bytes;
}

}  // namespace bootstate::test

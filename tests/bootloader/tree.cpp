#include "tests/bootloader/tree.hpp"

#include <stdlib.h>

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

#include "initrd/util_linux.hpp"

#include <string>

#include "core/dynamic_library.hpp"
#include "core/elf_dlopen_note.hpp"

namespace bootstate::util_linux {
namespace {

template <typename Table>
struct Loaded {
  Table functions;
  std::string error;  // empty when every function resolved
};

using dynamic_library::resolve;

// Declared for initrd builders: storage steps run in the initrd (docs/NIXOS.md).
BOOTSTATE_ELF_NOTE_DLOPEN("fdisk", "Partition tables of storage steps",
                          BOOTSTATE_DLOPEN_RECOMMENDED, "libfdisk.so.1");
BOOTSTATE_ELF_NOTE_DLOPEN("blkid", "Probing devices named by storage steps",
                          BOOTSTATE_DLOPEN_RECOMMENDED, "libblkid.so.1");

Loaded<Fdisk> load_fdisk() {
  Loaded<Fdisk> loaded;
  void* handle = dynamic_library::open("libfdisk.so.1", loaded.error);
  if (handle == nullptr) return loaded;
  Fdisk& table = loaded.functions;
  std::string& error = loaded.error;
#define BOOTSTATE_RESOLVE(name) &&resolve(handle, "fdisk_" #name, table.name, error)
  if (!(true BOOTSTATE_FDISK_FUNCTIONS(BOOTSTATE_RESOLVE))) table = Fdisk{};
#undef BOOTSTATE_RESOLVE
  return loaded;
}

Loaded<Blkid> load_blkid() {
  Loaded<Blkid> loaded;
  void* handle = dynamic_library::open("libblkid.so.1", loaded.error);
  if (handle == nullptr) return loaded;
  Blkid& table = loaded.functions;
  std::string& error = loaded.error;
#define BOOTSTATE_RESOLVE(name) &&resolve(handle, "blkid_" #name, table.name, error)
  if (!(true BOOTSTATE_BLKID_FUNCTIONS(BOOTSTATE_RESOLVE))) table = Blkid{};
#undef BOOTSTATE_RESOLVE
  return loaded;
}

template <typename Table>
Expected<const Table*> answer(const Loaded<Table>& loaded, const char* soname) {
  if (!loaded.error.empty()) {
    return make_error(ErrorCode::Unsupported, "{} not available: {}", soname, loaded.error);
  }
  return &loaded.functions;
}

}  // namespace

Expected<const Fdisk*> fdisk() {
  static const Loaded<Fdisk> loaded = load_fdisk();  // once, thread-safe (C++11 statics)
  return answer(loaded, "libfdisk.so.1");
}

Expected<const Blkid*> blkid() {
  static const Loaded<Blkid> loaded = load_blkid();
  return answer(loaded, "libblkid.so.1");
}

}  // namespace bootstate::util_linux

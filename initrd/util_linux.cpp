#include "initrd/util_linux.hpp"

#include <dlfcn.h>

#include <string>

namespace bootstate::util_linux {
namespace {

template <typename Table>
struct Loaded {
  Table functions;
  std::string error;  // empty when every function resolved
};

// Sets `function` to the symbol `name` of `handle`; false (and the reason in `error`) when the
// library lacks it.
template <typename Function>
bool resolve(void* handle, const char* name, Function& function, std::string& error) {
  ::dlerror();
  void* symbol = ::dlsym(handle, name);
  if (symbol == nullptr) {
    const char* why = ::dlerror();
    error = why != nullptr ? why : std::string(name) + ": no such symbol";
    return false;
  }
  // POSIX guarantees that a data pointer from dlsym converts to a function pointer.
  function = reinterpret_cast<Function>(symbol);
  return true;
}

// RTLD_NOW: a broken install fails here, once, not at the first call of some function.
// RTLD_NODELETE, as systemd does: the function pointers stay valid for the life of the process.
// The soname, not "libfdisk.so": the ABI version is part of what the decltype'd types assume.
void* open_library(const char* soname, std::string& error) {
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    error = why != nullptr ? why : "cannot be loaded";
  }
  return handle;
}

Loaded<Fdisk> load_fdisk() {
  Loaded<Fdisk> loaded;
  void* handle = open_library("libfdisk.so.1", loaded.error);
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
  void* handle = open_library("libblkid.so.1", loaded.error);
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

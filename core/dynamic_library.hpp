// Loading an optional library on first use (dlopen), as systemd does for its optional
// dependencies: stage2/libsystemd and initrd/util_linux build their function tables with these.
#pragma once

#include <dlfcn.h>

#include <string>

namespace bootstate::dynamic_library {

// RTLD_NOW: a broken install fails here, once, not at the first call of some function.
// RTLD_NODELETE, as systemd does: the function pointers stay valid for the life of the process.
// Pass the soname ("libfdisk.so.1"): the ABI version is part of what the decltype'd types assume.
// nullptr (and the reason in `error`) when it cannot be loaded.
inline void* open(const char* soname, std::string& error) {
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    error = why != nullptr ? why : std::string(soname) + ": cannot be loaded";
  }
  return handle;
}

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

}  // namespace bootstate::dynamic_library

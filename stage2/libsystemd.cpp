#include "stage2/libsystemd.hpp"

#include <dlfcn.h>

namespace bootstate::stage2::libsystemd {
namespace {

struct Loaded {
  Library functions;
  bool ok = false;
  std::string error;
};

// Sets `function` to the symbol `name` of `handle`; false (and dlerror's text in `error`)
// when the library lacks it.
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

Loaded load() {
  Loaded loaded;
  // RTLD_NOW: the library is BIND_NOW anyway, and a broken install should fail here, once,
  // not at the first call of a function. RTLD_NODELETE, as systemd does: the function
  // pointers stay valid for the life of the process. The soname, not "libsystemd.so": the
  // ABI version is part of what the decltype'd signatures assume.
  void* handle = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    loaded.error = why != nullptr ? why : "libsystemd.so.0: cannot be loaded";
    return loaded;
  }
  Library& f = loaded.functions;
  std::string& error = loaded.error;
  loaded.ok = resolve(handle, "sd_journal_send", f.journal_send, error) &&
              resolve(handle, "sd_notifyf", f.notifyf, error) &&
              resolve(handle, "sd_bus_new", f.bus_new, error) &&
              resolve(handle, "sd_bus_set_address", f.bus_set_address, error) &&
              resolve(handle, "sd_bus_start", f.bus_start, error) &&
              resolve(handle, "sd_bus_call_method", f.bus_call_method, error) &&
              resolve(handle, "sd_bus_error_free", f.bus_error_free, error) &&
              resolve(handle, "sd_bus_flush_close_unref", f.bus_flush_close_unref, error);
  if (!loaded.ok) loaded.functions = Library{};
  return loaded;
}

const Loaded& loaded() {
  static const Loaded instance = load();  // initialised once, thread-safe (C++11 statics)
  return instance;
}

}  // namespace

const Library* library() {
  const Loaded& state = loaded();
  return state.ok ? &state.functions : nullptr;
}

const std::string& load_error() {
  return loaded().error;
}

}  // namespace bootstate::stage2::libsystemd

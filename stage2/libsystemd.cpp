#include "stage2/libsystemd.hpp"

#include "core/dynamic_library.hpp"
#include "core/elf_dlopen_note.hpp"

namespace bootstate::stage2::libsystemd {
namespace {

struct Loaded {
  Library functions;
  bool ok = false;
  std::string error;
};

using dynamic_library::resolve;

// Declared for initrd builders: the initrd phases log, notify and reboot through it.
BOOTSTATE_ELF_NOTE_DLOPEN("libsystemd", "Journal, service notifications and reboot requests",
                          BOOTSTATE_DLOPEN_RECOMMENDED, "libsystemd.so.0");

Loaded load() {
  Loaded loaded;
  void* handle = dynamic_library::open("libsystemd.so.0", loaded.error);
  if (handle == nullptr) return loaded;
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

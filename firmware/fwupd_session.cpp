#include "firmware/fwupd_session.hpp"

#include <fcntl.h>
#include <fwupd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace bootstate {
namespace {

struct GObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct PtrArrayUnref {
  void operator()(GPtrArray* array) const { g_ptr_array_unref(array); }
};
using PtrArray = std::unique_ptr<GPtrArray, PtrArrayUnref>;

struct ErrorFree {
  void operator()(GError* error) const { g_error_free(error); }
};
using ErrorPtr = std::unique_ptr<GError, ErrorFree>;

std::string text_of(const gchar* text) {
  return text == nullptr ? std::string() : text;
}

constexpr std::string_view kNotRunning =
    "fwupd is not running (org.freedesktop.fwupd not on the system bus)";

FwupdDeviceInfo device_info(FwupdDevice* device) {
  FwupdDeviceInfo info;
  info.id = text_of(fwupd_device_get_id(device));
  info.name = text_of(fwupd_device_get_name(device));
  info.plugin = text_of(fwupd_device_get_plugin(device));
  info.version = text_of(fwupd_device_get_version(device));
  GPtrArray* guids = fwupd_device_get_guids(device);
  for (guint i = 0; guids != nullptr && i < guids->len; ++i) {
    info.guids.push_back(text_of(static_cast<const gchar*>(g_ptr_array_index(guids, i))));
  }
  info.updatable = fwupd_device_has_flag(device, FWUPD_DEVICE_FLAG_UPDATABLE);
  info.needs_reboot = fwupd_device_has_flag(device, FWUPD_DEVICE_FLAG_NEEDS_REBOOT);
  info.needs_shutdown = fwupd_device_has_flag(device, FWUPD_DEVICE_FLAG_NEEDS_SHUTDOWN);
  info.needs_activation = fwupd_device_has_flag(device, FWUPD_DEVICE_FLAG_NEEDS_ACTIVATION);
  info.update_state = text_of(fwupd_update_state_to_string(fwupd_device_get_update_state(device)));
  info.update_error = text_of(fwupd_device_get_update_error(device));
  if (FwupdRelease* release = fwupd_device_get_release_default(device)) {
    info.update_version = text_of(fwupd_release_get_version(release));
  }
  return info;
}

// The console heartbeat of bootstate reads the step's progress file (cli/progress.hpp):
// "PERCENT text". Written whole under a temporary name and renamed, so the reader never sees
// half a line; O_NOFOLLOW because the work directory is the step's, not ours.
void write_progress_file(const char* name, guint percentage) {
  const char* path = std::getenv("BOOTSTATE_PROGRESS");
  if (path == nullptr || *path != '/') return;
  const std::string final_path = path;
  const std::string temporary = final_path + ".new";
  // A new file every time (O_EXCL): an existing name, even a hard link, is never written into.
  ::unlink(temporary.c_str());
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;  // progress is a courtesy: the update goes on without it
  char line[128];
  const int length = std::snprintf(line, sizeof line, "%u fwupd: %s\n", percentage, name);
  const bool written = length > 0 && ::write(fd, line, static_cast<std::size_t>(length)) == length;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), final_path.c_str()) != 0) {
    ::unlink(temporary.c_str());
  }
}

// Progress of the daemon, as the client's properties change during a call. Lines on stderr
// reach the journal through the caller; STATUS= reaches `systemctl status`; the progress file
// reaches the console.
void report_progress(FwupdClient* client) {
  const FwupdStatus status = fwupd_client_get_status(client);
  const guint percentage = fwupd_client_get_percentage(client);
  static FwupdStatus last_status = FWUPD_STATUS_UNKNOWN;
  static guint last_percentage = G_MAXUINT;
  if (status == last_status && percentage == last_percentage) return;
  last_status = status;
  last_percentage = percentage;
  const char* name = status == FWUPD_STATUS_UNKNOWN ? "unknown" : fwupd_status_to_string(status);
  std::fprintf(stderr, "progress: %s %u%%\n", name, percentage);
  std::fflush(stderr);
  sd_notifyf(0, "STATUS=fwupd: %s %u%%", name, percentage);
  write_progress_file(name, percentage);
}

void on_progress(GObject* client, GParamSpec* /*spec*/, gpointer /*data*/) {
  report_progress(FWUPD_CLIENT(client));
}

// A device asking for a person (replug, press a button) cannot be answered at boot; its
// words go to the journal so whoever reads it knows why the install stalled.
void on_device_request(FwupdClient* /*client*/, FwupdRequest* request, gpointer /*data*/) {
  std::fprintf(stderr, "fwupd request: %s\n", text_of(fwupd_request_get_message(request)).c_str());
  std::fflush(stderr);
}

}  // namespace

struct FwupdSession::Impl {
  std::chrono::seconds timeout{};
  GObjectPtr<GCancellable> cancellable{g_cancellable_new()};
  GObjectPtr<FwupdClient> client{fwupd_client_new()};
  std::atomic<bool> expired{false};
  std::mutex mutex;
  std::condition_variable wake;
  bool finished = false;
  std::thread watchdog;

  void start_watchdog() {
    watchdog = std::thread([this] {
      std::unique_lock lock(mutex);
      if (!wake.wait_for(lock, timeout, [this] { return finished; })) {
        expired = true;
        g_cancellable_cancel(cancellable.get());
      }
    });
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      finished = true;
    }
    wake.notify_all();
    if (watchdog.joinable()) watchdog.join();
  }

  // Turns a GError into bootstate's Error, saying which of the usual suspects it was.
  Error error_from(GError* error, std::string_view doing) const {
    if (expired) {
      return make_error(ErrorCode::Timeout, "fwupd did not answer within {} s while {}",
                        timeout.count(), doing);
    }
    if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
        g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)) {
      return make_error(ErrorCode::Failed, "{} while {}", kNotRunning, doing);
    }
    if (g_dbus_error_is_remote_error(error)) g_dbus_error_strip_remote_error(error);
    const ErrorCode code = g_error_matches(error, FWUPD_ERROR, FWUPD_ERROR_NOT_FOUND)
                               ? ErrorCode::NotFound
                               : ErrorCode::Failed;
    return make_error(code, "{}", text_of(error->message));
  }

  // libfwupd connects lazily and a proxy is created even when nobody owns the name, so the
  // owner is checked first: "not running" must be said as such, not as a missing property.
  Expected<void> require_daemon() {
    GError* raw = nullptr;
    GObjectPtr<GDBusConnection> bus{g_bus_get_sync(G_BUS_TYPE_SYSTEM, cancellable.get(), &raw)};
    ErrorPtr error{raw};
    if (!bus) {
      if (expired) return error_from(error.get(), "connecting to the system bus");
      return make_error(ErrorCode::Failed, "{}: cannot reach the system bus: {}", kNotRunning,
                        text_of(error->message));
    }
    GVariant* owned = g_dbus_connection_call_sync(
        bus.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", FWUPD_DBUS_SERVICE), G_VARIANT_TYPE("(b)"),
        G_DBUS_CALL_FLAGS_NONE, -1, cancellable.get(), &raw);
    error.reset(raw);
    if (owned == nullptr)
      return error_from(error.get(), "asking the bus for org.freedesktop.fwupd");
    gboolean has_owner = FALSE;
    g_variant_get(owned, "(b)", &has_owner);
    g_variant_unref(owned);
    if (has_owner) return {};
    // Not running yet: on most systems fwupd.service is D-Bus activated. StartServiceByName
    // starts it where the bus can and fails at once with ServiceUnknown where it cannot.
    GVariant* started = g_dbus_connection_call_sync(
        bus.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "StartServiceByName", g_variant_new("(su)", FWUPD_DBUS_SERVICE, 0u), nullptr,
        G_DBUS_CALL_FLAGS_NONE, -1, cancellable.get(), &raw);
    error.reset(raw);
    if (started == nullptr) return error_from(error.get(), "starting org.freedesktop.fwupd");
    g_variant_unref(started);
    return {};
  }

  Expected<PtrArray> devices() {
    GError* raw = nullptr;
    PtrArray list{fwupd_client_get_devices(client.get(), cancellable.get(), &raw)};
    ErrorPtr error{raw};
    if (!list) {
      // fwupd answers "No detected devices" with an error; for us it is an empty list.
      if (g_error_matches(error.get(), FWUPD_ERROR, FWUPD_ERROR_NOTHING_TO_DO)) {
        return PtrArray{g_ptr_array_new_with_free_func(g_object_unref)};
      }
      return error_from(error.get(), "listing devices");
    }
    return list;
  }
};

FwupdSession::FwupdSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FwupdSession::~FwupdSession() = default;

Expected<std::unique_ptr<FwupdSession>> FwupdSession::connect(std::chrono::seconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->timeout = timeout;
  impl->start_watchdog();
  BOOTSTATE_TRY(impl->require_daemon());
  fwupd_client_set_user_agent_for_package(impl->client.get(), "bootstate-fwupd", "0.1");
  // One context for every call: the D-Bus proxy delivers the daemon's property changes
  // (progress) to the context it was created in, and each sync call iterates this one.
  fwupd_client_set_main_context(impl->client.get(), g_main_context_default());
  GError* raw = nullptr;
  if (!fwupd_client_connect(impl->client.get(), impl->cancellable.get(), &raw)) {
    ErrorPtr error{raw};
    return impl->error_from(error.get(), "connecting to fwupd");
  }
  // libfwupd 2.x reports progress as property notifications (status-changed is 1.x only).
  g_signal_connect(impl->client.get(), "notify::status", G_CALLBACK(on_progress), nullptr);
  g_signal_connect(impl->client.get(), "notify::percentage", G_CALLBACK(on_progress), nullptr);
  g_signal_connect(impl->client.get(), "device-request", G_CALLBACK(on_device_request), nullptr);
  return std::unique_ptr<FwupdSession>(new FwupdSession(std::move(impl)));
}

Expected<FwupdDeviceInfo> FwupdSession::find_device(std::string_view device) {
  auto list = impl_->devices();
  if (!list) return list.error();
  const std::string wanted(device);
  const bool by_guid = fwupd_guid_is_valid(wanted.c_str());
  std::vector<FwupdDeviceInfo> found;
  for (guint i = 0; i < (*list)->len; ++i) {
    auto* candidate = static_cast<FwupdDevice*>(g_ptr_array_index(list->get(), i));
    const bool match = by_guid ? fwupd_device_has_guid(candidate, wanted.c_str())
                               : g_str_has_prefix(fwupd_device_get_id(candidate), wanted.c_str());
    if (match) found.push_back(device_info(candidate));
  }
  if (found.empty()) {
    return make_error(ErrorCode::NotFound, "fwupd knows no device with {} \"{}\"",
                      by_guid ? "GUID" : "id", wanted);
  }
  if (found.size() > 1) {
    std::string names;
    for (const auto& info : found) names += fmt::format(" {} ({})", info.id, info.name);
    return make_error(ErrorCode::InvalidInput, "\"{}\" names {} devices; use a device id:{}",
                      wanted, found.size(), names);
  }
  return found.front();
}

Expected<std::vector<FwupdCabinetTarget>> FwupdSession::cabinet_targets(const std::string& path) {
  GError* raw = nullptr;
  PtrArray list{
      fwupd_client_get_details(impl_->client.get(), path.c_str(), impl_->cancellable.get(), &raw)};
  ErrorPtr error{raw};
  if (!list) return impl_->error_from(error.get(), "reading the cabinet " + path);
  std::vector<FwupdCabinetTarget> targets;
  for (guint i = 0; i < list->len; ++i) {
    auto* device = static_cast<FwupdDevice*>(g_ptr_array_index(list.get(), i));
    FwupdDeviceInfo info = device_info(device);
    FwupdCabinetTarget target{info.id, info.name, info.guids,
                              {},      false,     info.needs_reboot || info.needs_shutdown};
    if (FwupdRelease* release = fwupd_device_get_release_default(device)) {
      target.release_version = text_of(fwupd_release_get_version(release));
      target.trusted = fwupd_release_has_flag(release, FWUPD_RELEASE_FLAG_TRUSTED_PAYLOAD);
    }
    targets.push_back(std::move(target));
  }
  return targets;
}

Expected<void> FwupdSession::install(const std::string& device_id, const std::string& path,
                                     bool allow_older, bool allow_reinstall) {
  auto flags = static_cast<guint64>(FWUPD_INSTALL_FLAG_NONE);
  if (allow_older) flags |= FWUPD_INSTALL_FLAG_ALLOW_OLDER;
  if (allow_reinstall) flags |= FWUPD_INSTALL_FLAG_ALLOW_REINSTALL;
  GError* raw = nullptr;
  const gboolean ok =
      fwupd_client_install(impl_->client.get(), device_id.c_str(), path.c_str(),
                           static_cast<FwupdInstallFlags>(flags), impl_->cancellable.get(), &raw);
  ErrorPtr error{raw};
  if (!ok) return impl_->error_from(error.get(), "installing " + path);
  return {};
}

Expected<std::optional<FwupdDeviceInfo>> FwupdSession::results(const std::string& device_id) {
  GError* raw = nullptr;
  GObjectPtr<FwupdDevice> device{fwupd_client_get_results(impl_->client.get(), device_id.c_str(),
                                                          impl_->cancellable.get(), &raw)};
  ErrorPtr error{raw};
  if (!device) {
    if (g_error_matches(error.get(), FWUPD_ERROR, FWUPD_ERROR_NOTHING_TO_DO) ||
        g_error_matches(error.get(), FWUPD_ERROR, FWUPD_ERROR_NOT_FOUND)) {
      return std::optional<FwupdDeviceInfo>();
    }
    return impl_->error_from(error.get(), "reading fwupd's result for " + device_id);
  }
  return std::optional<FwupdDeviceInfo>(device_info(device.get()));
}

bool FwupdSession::only_trusted() {
  return fwupd_client_get_only_trusted(impl_->client.get());
}

Expected<void> FwupdSession::clear_results(const std::string& device_id) {
  GError* raw = nullptr;
  const gboolean ok = fwupd_client_clear_results(impl_->client.get(), device_id.c_str(),
                                                 impl_->cancellable.get(), &raw);
  ErrorPtr error{raw};
  // Nothing to clear is what we want: the call is idempotent for us.
  if (!ok && !g_error_matches(error.get(), FWUPD_ERROR, FWUPD_ERROR_NOTHING_TO_DO) &&
      !g_error_matches(error.get(), FWUPD_ERROR, FWUPD_ERROR_NOT_FOUND)) {
    return impl_->error_from(error.get(), "clearing fwupd's result for " + device_id);
  }
  return {};
}

}  // namespace bootstate

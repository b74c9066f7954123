// Why safeprobe: it reports "ambivalent" when two signatures overlap instead of picking one,
// and for the destroy check any signature, even an ambiguous one, is a reason to refuse.
#include "initrd/blkid_probe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "initrd/util_linux.hpp"

namespace bootstate {
namespace {

using util_linux::Blkid;

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string lookup(const Blkid& blkid, blkid_probe probe, const char* name) {
  const char* data = nullptr;
  std::size_t length = 0;
  if (blkid.probe_lookup_value(probe, name, &data, &length) != 0 || !data) return {};
  std::string value(data, length);
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

}  // namespace

Expected<ProbeResult> probe_region(const std::string& path, std::uint64_t offset,
                                   std::uint64_t size) {
  auto library = util_linux::blkid();
  if (!library) return library.error().with_context(fmt::format("probe {}", path));
  const Blkid& blkid = **library;
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_error(ErrorCode::Io, "open {}: {}", path, errno_text(errno));
  std::unique_ptr<blkid_struct_probe, decltype(Blkid::free_probe)> probe(blkid.new_probe(),
                                                                         blkid.free_probe);
  if (!probe) return make_error(ErrorCode::Io, "probe {}: out of memory", path);
  if (blkid.probe_set_device(probe.get(), fd.get(), static_cast<blkid_loff_t>(offset),
                             static_cast<blkid_loff_t>(size)) != 0) {
    return make_error(ErrorCode::Io, "probe {} at byte {}: cannot set up the probe", path, offset);
  }
  blkid.probe_enable_superblocks(probe.get(), 1);
  blkid.probe_set_superblocks_flags(
      probe.get(), BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
  blkid.probe_enable_partitions(probe.get(), 1);
  ProbeResult result;
  result.size = static_cast<std::uint64_t>(blkid.probe_get_size(probe.get()));
  int rc = blkid.do_safeprobe(probe.get());
  if (rc == -2) {
    result.type = "ambivalent";
    result.ambivalent = true;
    return result;
  }
  if (rc < 0) {
    return make_error(ErrorCode::Io, "probe {} at byte {}: libblkid failed", path, offset);
  }
  if (rc == 1) return result;  // nothing found
  result.type = lookup(blkid, probe.get(), "TYPE");
  if (result.type.empty()) result.type = lookup(blkid, probe.get(), "PTTYPE");
  if (result.type.empty()) result.type = "unknown signature";
  result.label = lookup(blkid, probe.get(), "LABEL");
  result.uuid = lookup(blkid, probe.get(), "UUID");
  return result;
}

Expected<std::optional<std::string>> evaluate_system_tag(const std::string& tag,
                                                         const std::string& value) {
  auto library = util_linux::blkid();
  if (!library) return library.error().with_context(fmt::format("resolve {}={}", tag, value));
  char* device = (*library)->evaluate_tag(tag.c_str(), value.c_str(), nullptr);
  if (!device) return std::optional<std::string>();
  std::string result(device);
  std::free(device);
  return std::optional<std::string>(std::move(result));
}

}  // namespace bootstate

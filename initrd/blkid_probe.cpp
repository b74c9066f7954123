// Why safeprobe: it reports "ambivalent" when two signatures overlap instead of picking one,
// and for the destroy check any signature, even an ambiguous one, is a reason to refuse.
#include "initrd/blkid_probe.hpp"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace bootstate {
namespace {

struct ProbeDeleter {
  void operator()(blkid_struct_probe* probe) const { blkid_free_probe(probe); }
};

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

std::string lookup(blkid_probe probe, const char* name) {
  const char* data = nullptr;
  std::size_t length = 0;
  if (blkid_probe_lookup_value(probe, name, &data, &length) != 0 || !data) return {};
  std::string value(data, length);
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

}  // namespace

Expected<ProbeResult> probe_region(const std::string& path, std::uint64_t offset,
                                   std::uint64_t size) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_error(ErrorCode::Io, "open {}: {}", path, errno_text(errno));
  std::unique_ptr<blkid_struct_probe, ProbeDeleter> probe(blkid_new_probe());
  if (!probe) return make_error(ErrorCode::Io, "probe {}: out of memory", path);
  if (blkid_probe_set_device(probe.get(), fd.get(), static_cast<blkid_loff_t>(offset),
                             static_cast<blkid_loff_t>(size)) != 0) {
    return make_error(ErrorCode::Io, "probe {} at byte {}: cannot set up the probe", path, offset);
  }
  blkid_probe_enable_superblocks(probe.get(), 1);
  blkid_probe_set_superblocks_flags(
      probe.get(), BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
  blkid_probe_enable_partitions(probe.get(), 1);
  ProbeResult result;
  result.size = static_cast<std::uint64_t>(blkid_probe_get_size(probe.get()));
  int rc = blkid_do_safeprobe(probe.get());
  if (rc == -2) {
    result.type = "ambivalent";
    result.ambivalent = true;
    return result;
  }
  if (rc < 0) {
    return make_error(ErrorCode::Io, "probe {} at byte {}: libblkid failed", path, offset);
  }
  if (rc == 1) return result;  // nothing found
  result.type = lookup(probe.get(), "TYPE");
  if (result.type.empty()) result.type = lookup(probe.get(), "PTTYPE");
  if (result.type.empty()) result.type = "unknown signature";
  result.label = lookup(probe.get(), "LABEL");
  result.uuid = lookup(probe.get(), "UUID");
  return result;
}

std::optional<std::string> evaluate_system_tag(const std::string& tag, const std::string& value) {
  char* device = blkid_evaluate_tag(tag.c_str(), value.c_str(), nullptr);
  if (!device) return std::nullopt;
  std::string result(device);
  std::free(device);
  return result;
}

}  // namespace bootstate

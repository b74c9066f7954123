// The floor for `status --json` (issue #17 item 4): read the files status reads (the plan and a
// state slot) and parse them with rapidjson alone, in situ, nothing else.
//   bench_json_floor PLAN SLOT
// The slot's 32-byte frame header is skipped; the payload is parsed up to its end.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "rapidjson/document.h"

namespace {

std::string read_all(const char* path) {
  std::string bytes;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat info {};
  if (fd < 0 || fstat(fd, &info) != 0) return bytes;
  bytes.resize(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = read(fd, bytes.data() + done, bytes.size() - done);
    if (got <= 0) break;
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  close(fd);
  return bytes;
}

bool parse(std::string& text, std::size_t offset) {
  if (text.size() <= offset) return false;
  rapidjson::Document document;
  document.ParseInsitu<rapidjson::kParseStopWhenDoneFlag>(text.data() + offset);
  return !document.HasParseError() && document.IsObject();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench_json_floor PLAN SLOT\n");
    return 2;
  }
  std::string plan = read_all(argv[1]);
  std::string slot = read_all(argv[2]);
  if (!parse(plan, 0) || !parse(slot, 32)) {
    std::fprintf(stderr, "parse failed\n");
    return 1;
  }
  return 0;
}

// A small program for test plans: steps must be real programs run without a shell, and tests
// need ones that leave countable traces.
//   step-tool append FILE TEXT     append TEXT and a newline to FILE (counts applications)
//   step-tool has FILE TEXT        exit 0 if FILE has a line TEXT (a `check`)
//   step-tool fail CODE            exit with CODE
//   step-tool sleep SECONDS        sleep, then exit 0
//   step-tool write FILE TEXT      replace FILE's content with TEXT
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: step-tool append|has|fail|sleep|write ARGS\n");
    return 64;
  }
  std::string verb = argv[1];
  if (verb == "append" && argc == 4) {
    std::ofstream(argv[2], std::ios::app) << argv[3] << "\n";
    std::printf("appended %s to %s\n", argv[3], argv[2]);
    return 0;
  }
  if (verb == "write" && argc == 4) {
    std::ofstream(argv[2], std::ios::trunc) << argv[3];
    return 0;
  }
  if (verb == "has" && argc == 4) {
    std::ifstream file(argv[2]);
    std::string line;
    while (std::getline(file, line)) {
      if (line == argv[3]) return 0;
    }
    return 1;
  }
  if (verb == "fail") {
    std::fprintf(stderr, "failing on purpose with %s\n", argv[2]);
    return std::atoi(argv[2]);
  }
  if (verb == "sleep") {
    ::sleep(static_cast<unsigned>(std::atoi(argv[2])));
    return 0;
  }
  std::fprintf(stderr, "step-tool: bad arguments\n");
  return 64;
}

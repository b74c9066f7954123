// A small program for test plans: steps must be real programs run without a shell, and tests
// need ones that leave countable traces.
//   step-tool append FILE TEXT     append TEXT and a newline to FILE (counts applications)
//   step-tool has FILE TEXT        exit 0 if FILE has a line TEXT (a `check`)
//   step-tool fail CODE            exit with CODE
//   step-tool sleep SECONDS        sleep, then exit 0
//   step-tool write FILE TEXT      replace FILE's content with TEXT
//   step-tool daemon FILE          start a helper the way a daemon does (fork, setsid, fork),
//                                  write the helper's pid to FILE, and exit 0 at once; the
//                                  helper sleeps for an hour (what bootstate must kill)
#include <sys/wait.h>
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
  if (verb == "daemon") {
    pid_t first = ::fork();
    if (first < 0) return 70;
    if (first == 0) {
      ::setsid();  // out of the step's session and process group
      pid_t helper = ::fork();
      if (helper != 0) ::_exit(helper < 0 ? 70 : 0);
      std::ofstream(argv[2], std::ios::trunc) << ::getpid() << "\n";
      for (int fd = 0; fd < 3; ++fd) ::close(fd);
      ::sleep(3600);
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(first, &status, 0);
    // The pid file is there before the step ends, so the test can look for the helper.
    for (int i = 0; i < 500; ++i) {
      if (std::ifstream(argv[2]).peek() != std::ifstream::traits_type::eof()) break;
      ::usleep(10000);
    }
    return 0;
  }
  if (verb == "sleep") {
    ::sleep(static_cast<unsigned>(std::atoi(argv[2])));
    return 0;
  }
  std::fprintf(stderr, "step-tool: bad arguments\n");
  return 64;
}

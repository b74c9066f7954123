/* The baseline of benchmark (a): a minimal C program that opens and reads a 4 KiB file. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  char buffer[4096];
  int fd = open(argc > 1 ? argv[1] : "/etc/hostname", O_RDONLY);
  if (fd < 0) return 1;
  ssize_t got = read(fd, buffer, sizeof buffer);
  close(fd);
  return got < 0;
}

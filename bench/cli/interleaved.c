/* Times commands interleaved run by run: round i runs command 1, 2, ... each once (fork, execv,
 * wait; output to /dev/null), so every command meets the same moment of a shared machine's
 * load. Prints each command's median wall time and its ratio to the first command's.
 *
 *   bench_interleaved RUNS "PROGRAM ARG..." "PROGRAM ARG..." ...
 *
 * Arguments are split at spaces (no quoting): enough for benchmark (a). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxCommands = 8, kMaxArguments = 16 };

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double run_once(char** argv) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  const pid_t child = fork();
  if (child < 0) {
    perror("fork");
    exit(1);
  }
  if (child == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s failed (status %d)\n", argv[0], status);
    exit(1);
  }
  return (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc - 2 > kMaxCommands) {
    fprintf(stderr, "usage: %s RUNS COMMAND... (at most %d)\n", argv[0], kMaxCommands);
    return 2;
  }
  const int runs = atoi(argv[1]), commands = argc - 2;
  char* words[kMaxCommands][kMaxArguments + 1];
  for (int c = 0; c < commands; ++c) {
    int count = 0;
    for (char* word = strtok(argv[2 + c], " "); word; word = strtok(NULL, " ")) {
      if (count == kMaxArguments) {
        fprintf(stderr, "command %d has more than %d arguments\n", c + 1, kMaxArguments);
        return 2;
      }
      words[c][count++] = word;
    }
    words[c][count] = NULL;
  }
  double* times = malloc(sizeof(double) * runs * commands);
  for (int i = 0; i < runs; ++i)
    for (int c = 0; c < commands; ++c) times[c * runs + i] = run_once(words[c]);
  double first = 0;
  for (int c = 0; c < commands; ++c) {
    qsort(times + c * runs, runs, sizeof(double), compare_doubles);
    const double median = times[c * runs + runs / 2];
    if (c == 0) first = median;
    printf("%s median %.3f ms p25 %.3f p75 %.3f ratio %.3f\n", words[c][0], median,
           times[c * runs + runs / 4], times[c * runs + 3 * runs / 4], median / first);
  }
  free(times);
  return 0;
}

#!/usr/bin/env python3
"""Benchmark (a) across builds: an idle `run --phase PHASE` (nothing pending) of two or more
builds against the C baseline, at 10, 1,000 and 10,000 applied migrations (BENCH_SIZES), in the same run.

  python3 bench/cli/idle_compare.py BUILD_DIR [BUILD_DIR ...]

Each build makes its own tree with its own bench_make_big_state (the state format may differ
between builds). Per size it prints, for every build:
- wall time: bench_interleaved alternates the C baseline and all builds run by run (2,000 runs
  each unless BENCH_RUNS says otherwise), medians and the ratio to the C baseline;
- instructions: valgrind --tool=callgrind (this machine's perf has no instruction counter);
- system calls: strace -f -c, the total and the calls by name.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

builds = [os.path.abspath(path) for path in sys.argv[1:]] or [os.path.abspath("build")]
RUNS = os.environ.get("BENCH_RUNS", "2000")
PHASE = os.environ.get("BENCH_PHASE", "post-activation")
here = os.path.dirname(os.path.abspath(__file__))
binaries = tempfile.mkdtemp(prefix="bootstate-idle-bin-")


def installed_copy(path, name):
    # Timed as installed copies (see run.py: the file the linker wrote starts slower).
    copy = os.path.join(binaries, name)
    shutil.copy2(path, copy)
    return copy


def tree(build, count):
    root = tempfile.mkdtemp(prefix="bootstate-idle-")
    subprocess.run([os.path.join(build, "bench/cli/bench_make_big_state"), root, str(count)],
                   check=True)
    return root


def callgrind(command):
    out = tempfile.mktemp()
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
                            + command, capture_output=True, text=True)
    os.remove(out)
    found = re.search(r"Collected : (\d+)", result.stderr)
    return int(found.group(1)) if found else -1


def syscalls(command):
    out = tempfile.mktemp()
    subprocess.run(["strace", "-f", "-c", "-o", out] + command, capture_output=True)
    with open(out) as file:
        text = file.read()
    os.remove(out)
    total = 0
    names = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] != "total" and re.match(r"[\d.]+$", fields[0]):
            calls = int(fields[3])
            names[fields[-1]] = calls
            total += calls
    return total, names


def main():
    read4k = installed_copy(os.path.join(builds[0], "bench/cli/bench_read4k"), "read4k")
    sample = os.path.join(binaries, "4k")
    with open(sample, "wb") as file:
        file.write(b"x" * 4096)
    programs = [installed_copy(os.path.join(build, "cli/bootstate"), "bootstate-%d" % index)
                for index, build in enumerate(builds)]
    sizes = [int(size) for size in os.environ.get("BENCH_SIZES", "10 1000 10000").split()]
    for count in sizes:
        roots = [tree(build, count) for build in builds]
        commands = [[program, "--root", root, "run", "--phase", PHASE]
                    for program, root in zip(programs, roots)]
        for command in commands:  # idle: nothing pending, nothing committed
            assert subprocess.run(command, capture_output=True).returncode == 0, command
        result = subprocess.run([os.path.join(builds[0], "bench/cli/bench_interleaved"), RUNS,
                                 "%s %s" % (read4k, sample)] + [" ".join(c) for c in commands],
                                check=True, capture_output=True, text=True).stdout.splitlines()
        medians = [float(re.search(r"median ([\d.]+)", line).group(1)) for line in result]
        print("%d applied migrations, %s, load %.1f:" % (count, PHASE, os.getloadavg()[0]))
        print("  C read 4 KiB: %.3f ms (median of %s)" % (medians[0], RUNS))
        for build, command, wall in zip(builds, commands, medians[1:]):
            total, names = syscalls(command)
            print("  %s: %.3f ms = %.2fx; %d instructions; %d system calls" %
                  (build, wall, wall / medians[0], callgrind(command), total))
            print("    " + ", ".join("%s %d" % item for item in sorted(names.items())))
        for root in roots:
            shutil.rmtree(root)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(binaries)

#!/usr/bin/env python3
"""Benchmarks of the bootstate program (issue: core, item 10). Prints the numbers that
docs/PERFORMANCE.md records.

  python3 bench/cli/run.py BUILD_DIR

(a) `run --phase post-activation` with nothing pending, against a minimal C program that opens
    and reads a 4 KiB file: whole-process wall time (hyperfine -N, no shell). On a shared
    machine one hyperfine run's ratio moves by ±0.2 with the load, so ROUNDS invocations each
    hold both programs (they share that moment's load) and the median of their ratios counts.
    Then bench_interleaved alternates the two run by run, which moves less (1.33-1.38× on one
    machine between load 0.9 and 1.8).
(b) `--json status` with 1,000 migrations of 3 steps each and a full history.
(c) fsync/fdatasync calls per committed transition (strace -c).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
make_big_state = os.path.join(build, "bench/cli/bench_make_big_state")
interleaved = os.path.join(build, "bench/cli/bench_interleaved")


# The programs are timed as installed copies, not as the files the linker wrote: on ext4 the
# bootstate that ld wrote started 0.045 ms (5.5 %) slower than a copy of it (bench_interleaved,
# 2,000 runs each, 2026-11-30), page-cache state that an installed binary does not have.
binaries = tempfile.mkdtemp(prefix="bootstate-bench-bin-")


def installed_copy(path):
    copy = os.path.join(binaries, os.path.basename(path))
    shutil.copy2(path, copy)
    return copy


bootstate = installed_copy(os.path.join(build, "cli/bootstate"))
read4k = installed_copy(os.path.join(build, "bench/cli/bench_read4k"))


def tree_with_plan(migrations):
    root = tempfile.mkdtemp(prefix="bootstate-bench-")
    for directory in ("proc/sys/kernel/random", "boot/loader/entries", "nix/store/gen/bootstate"):
        os.makedirs(os.path.join(root, directory))
    with open(os.path.join(root, "proc/cmdline"), "w") as file:
        file.write("init=/nix/store/gen/init\n")
    with open(os.path.join(root, "proc/sys/kernel/random/boot_id"), "w") as file:
        file.write("boot-1\n")
    with open(os.path.join(root, "nix/store/gen/bootstate/plan.json"), "w") as file:
        json.dump({"schema": 1, "generation": "/nix/store/gen", "migrations": migrations}, file)
    return root


def hyperfine(commands, runs):
    export = tempfile.mktemp(suffix=".json")
    subprocess.run(["hyperfine", "-N", "--warmup", "20", "--runs", str(runs), "--export-json",
                    export, "--style", "none"] + commands, check=True, capture_output=True)
    with open(export) as file:
        results = json.load(file)["results"]
    os.remove(export)
    return [(r["mean"] * 1000, r["stddev"] * 1000, r["median"] * 1000) for r in results]


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def bench_nothing_pending():
    step = {"id": "a", "phase": "post-activation", "kind": "command", "command": ["/bin/true"]}
    root = tree_with_plan([{"id": "m", "policy": "required", "steps": [step]}])
    run = [bootstate, "--root", root, "run", "--phase", "post-activation"]
    assert subprocess.run(run).returncode == 0  # completes the migration once
    subprocess.run(["sh", "-c", "echo boot-2 > %s/proc/sys/kernel/random/boot_id" % root])
    assert subprocess.run(run).returncode == 0  # this boot: nothing pending
    sample = os.path.join(root, "4k")
    with open(sample, "wb") as file:
        file.write(b"x" * 4096)
    ratios = []
    for round_number in range(ROUNDS):
        (c_mean, c_dev, _), (b_mean, b_dev, _) = hyperfine(
            ["%s %s" % (read4k, sample), " ".join(run)], 300)
        ratios.append(b_mean / c_mean)
        print("(a) round %d: bootstate run %.3f ms (±%.3f); C read 4 KiB %.3f ms (±%.3f); "
              "ratio %.2f×; load %.1f" % (round_number + 1, b_mean, b_dev, c_mean, c_dev,
                                          ratios[-1], os.getloadavg()[0]))
    # Second method: one run of each program in turn, 2,000 times; medians.
    result = subprocess.run([interleaved, "2000", "%s %s" % (read4k, sample), " ".join(run)],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    c_median, b_median = (float(re.search(r"median ([\d.]+)", line).group(1)) for line in result)
    shutil.rmtree(root)
    print("(a) interleaved run by run, 2,000 each: bootstate %.3f ms, C %.3f ms (medians): "
          "ratio %.2f×; load %.1f" % (b_median, c_median, b_median / c_median,
                                      os.getloadavg()[0]))
    print("(a) nothing pending: median ratio %.2f× over %d rounds (lowest %.2f×, highest %.2f×)"
          % (median(ratios), len(ratios), min(ratios), max(ratios)))


def bench_status_big():
    root = tempfile.mkdtemp(prefix="bootstate-bench-")
    subprocess.run([make_big_state, root, "1000"], check=True)
    size = sum(os.path.getsize(os.path.join(root, "boot/bootstate", n))
               for n in os.listdir(os.path.join(root, "boot/bootstate")))
    ((mean, dev, median),) = hyperfine(
        [" ".join([bootstate, "--root", root, "--json", "status"])], 20)
    shutil.rmtree(root)
    print("(b) status --json, 1,000 migrations x 3 steps + 64 history: %.1f ms (±%.1f, median "
          "%.1f); store %d bytes" % (mean, dev, median, size))


def bench_fsyncs_per_commit():
    steps = [{"id": "s%d" % i, "phase": "post-activation", "kind": "command",
              "command": ["/bin/true"]} for i in range(5)]
    root = tree_with_plan([{"id": "m", "policy": "required", "steps": steps}])
    # First run creates the store (its directory and files): measure a later attempt.
    empty = tree_with_plan([])
    shutil.rmtree(root + "/boot")
    shutil.copytree(empty + "/boot", root + "/boot", dirs_exist_ok=True)
    subprocess.run([bootstate, "--root", empty, "run", "--phase", "post-activation"])
    shutil.rmtree(root + "/boot")
    shutil.copytree(empty + "/boot", root + "/boot")
    summary = tempfile.mktemp()
    subprocess.run(["strace", "-f", "-c", "-o", summary, "-e",
                    "trace=fsync,fdatasync,syncfs,sync,sync_file_range",
                    bootstate, "--root", root, "run", "--phase", "post-activation"], check=True)
    with open(summary) as file:
        text = file.read()
    total = re.search(r"^\s*[\d.]+\s+[\d.]+\s+(?:\d+\s+)?(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    calls = int(total.group(1)) if total else 0
    # Commits: attempt start, then running + done for each of 5 steps, then complete.
    commits = 1 + 2 * len(steps) + 1
    print("(c) %d sync calls for %d committed transitions: %.2f per commit" %
          (calls, commits, calls / commits))
    print(text)
    shutil.rmtree(root)
    shutil.rmtree(empty)


if __name__ == "__main__":
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is needed (apt-get install hyperfine)")
    try:
        bench_nothing_pending()
        bench_status_big()
        bench_fsyncs_per_commit()
    finally:
        shutil.rmtree(binaries)

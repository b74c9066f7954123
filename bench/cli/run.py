#!/usr/bin/env python3
"""Benchmarks of the bootstate program (issue: core, item 10). Prints the numbers that
docs/PERFORMANCE.md records.

  python3 bench/cli/run.py BUILD_DIR

(a) `run --phase post-activation` with nothing pending, against a minimal C program that opens
    and reads a 4 KiB file: whole-process wall time (hyperfine -N, no shell), ratio of means.
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
bootstate = os.path.join(build, "cli/bootstate")
read4k = os.path.join(build, "bench/cli/bench_read4k")
make_big_state = os.path.join(build, "bench/cli/bench_make_big_state")


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
    (c_mean, c_dev, c_median), (b_mean, b_dev, b_median) = hyperfine(
        ["%s %s" % (read4k, sample), " ".join(run)], 300)
    shutil.rmtree(root)
    print("(a) nothing pending: bootstate run %.3f ms (±%.3f, median %.3f); C read 4 KiB "
          "%.3f ms (±%.3f, median %.3f); ratio %.2f× (mean), %.2f× (median)"
          % (b_mean, b_dev, b_median, c_mean, c_dev, c_median, b_mean / c_mean,
             b_median / c_median))


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
    bench_nothing_pending()
    bench_status_big()
    bench_fsyncs_per_commit()

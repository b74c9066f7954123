#!/usr/bin/env python3
"""Scaling benchmarks (issue #17 items 4 and 5): every number is a ratio to a reference
measured in the same run, interleaved run by run.

  python3 bench/cli/scale.py BUILD_DIR

(a) idle `run --phase post-activation` at 10, 100, 1,000, 10,000 applied migrations
    (BENCH_SIZES) against bench_read4k (C, reads 4 KiB). Target ≤ 1.2×.
(b) `--json status` at the same sizes, against
    bench_json_floor (rapidjson alone parsing the same plan and slot bytes). Target ≤ 1.2× at
    1,000, and linear: time per migration at 10,000 against 1,000. Max RSS at the largest size.
    Then 1,000 and 4,000 pending migrations (no state): their ratio (4 is linear).
(c) per step: a plan of N /bin/true command steps (BENCH_STEPS, default 40) on a store with 10
    and 1,000 applied migrations; marginal time per step ((t(N) − t(1)) / (N − 1)) against a
    plain fork+exec+wait of /bin/true (bench_interleaved's median) in the same rounds.
    Target ≤ 1.5× at 1,000.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
RUNS = os.environ.get("BENCH_RUNS", "200")
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10 100 1000 10000").split()]
STEPS = int(os.environ.get("BENCH_STEPS", "40"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
binaries = tempfile.mkdtemp(prefix="bootstate-scale-bin-")


def installed_copy(name):
    # Timed as installed copies (run.py: the file the linker wrote starts slower).
    copy = os.path.join(binaries, os.path.basename(name))
    shutil.copy2(os.path.join(build, name), copy)
    return copy


bootstate = installed_copy("cli/bootstate")
read4k = installed_copy("bench/cli/bench_read4k")
floor = installed_copy("bench/cli/bench_json_floor")
interleaved = os.path.join(build, "bench/cli/bench_interleaved")
make_big_state = os.path.join(build, "bench/cli/bench_make_big_state")
PLAN = "nix/store/bench-gen/bootstate/plan.json"


def tree(count, pending=False):
    root = tempfile.mkdtemp(prefix="bootstate-scale-")
    subprocess.run([make_big_state, root, str(count)], check=True)
    if pending:  # the same plan, no state: every migration pending
        shutil.rmtree(os.path.join(root, "boot/bootstate"))
        os.makedirs(os.path.join(root, "boot/bootstate"))
    return root


def slot_of(root):
    """The slot with the highest sequence (header bytes 12..20): the one status parses."""
    directory = os.path.join(root, "boot/bootstate")
    best, best_sequence = None, -1
    for name in sorted(os.listdir(directory)):
        if name not in ("state.0", "state.1"):
            continue
        with open(os.path.join(directory, name), "rb") as file:
            header = file.read(32)
        sequence = int.from_bytes(header[12:20], "little") if len(header) == 32 else -1
        if sequence > best_sequence:
            best, best_sequence = os.path.join(directory, name), sequence
    return best


def settle(root):
    """A tree as a machine has it after this bootstate ran a migration: both slots written in
    this build's layout (bench_make_big_state writes one compact slot), the idle certificate."""
    plan_with_steps(root, 1)
    subprocess.run([bootstate, "--root", root, "run", "--phase", "post-activation"],
                   check=True, capture_output=True)


def medians(runs, *commands):
    out = subprocess.run([interleaved, str(runs)] + [" ".join(c) for c in commands], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return [float(re.search(r"median ([\d.]+)", line).group(1)) for line in out]


def max_rss_kb(command):
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True,
                            text=True)
    return int(result.stderr.strip().splitlines()[-1])


def bench_idle_and_status():
    sample = os.path.join(binaries, "4k")
    with open(sample, "wb") as file:
        file.write(b"x" * 4096)
    per_migration = {}
    for count in SIZES:
        root = tree(count)
        settle(root)
        run = [bootstate, "--root", root, "run", "--phase", "post-activation"]
        assert subprocess.run(run, capture_output=True).returncode == 0
        c, b = medians(RUNS, [read4k, sample], run)
        print("(a) %6d applied: idle run %.3f ms, C %.3f ms: %.2fx (load %.1f)" %
              (count, b, c, b / c, os.getloadavg()[0]))
        status = [bootstate, "--root", root, "--json", "status"]
        reference = [floor, os.path.join(root, PLAN), slot_of(root)]
        runs = max(5, min(int(RUNS), 20000 // max(count, 1)))
        f, s = medians(runs, reference, status)
        per_migration[count] = s / count
        print("(b) %6d applied: status --json %.3f ms, rapidjson floor %.3f ms: %.2fx; "
              "%.4f ms per migration (load %.1f)" % (count, s, f, s / f, s / count,
                                                     os.getloadavg()[0]))
        if count == max(SIZES):
            print("(b) %6d applied: max RSS status %d KB, floor %d KB" %
                  (count, max_rss_kb(status), max_rss_kb(reference)))
        shutil.rmtree(root)
    if 1000 in per_migration and 10000 in per_migration:
        print("(b) linearity: time per migration at 10,000 / at 1,000 = %.2f (1.0 is linear)" %
              (per_migration[10000] / per_migration[1000]))
    bench_pending()


def bench_pending():
    # Every migration pending: status simulates the boots that run them. Linear is 4x for 4x
    # the migrations; the engine's per-decision scans made it 16-23x (docs/PERFORMANCE.md
    # "Session 8").
    times = {}
    for count in (1000, 4000):
        root = tree(count, pending=True)
        status = [bootstate, "--root", root, "--json", "status"]
        (times[count],) = medians(5, status)
        print("(b) %6d pending: status --json %.1f ms (median of 5, load %.1f)" %
              (count, times[count], os.getloadavg()[0]))
        shutil.rmtree(root)
    print("(b) pending growth: 4,000 / 1,000 = %.2f (4 is linear, 16 quadratic)" %
          (times[4000] / times[1000]))


def plan_with_steps(root, steps):
    with open(os.path.join(root, PLAN)) as file:
        plan = json.load(file)
    plan["migrations"].append({"id": "bench-steps", "policy": "required", "steps": [
        {"id": "s%d" % i, "phase": "post-activation", "kind": "command",
         "command": ["/bin/true"]} for i in range(steps)]})
    with open(os.path.join(root, PLAN), "w") as file:
        json.dump(plan, file)


def bench_per_step():
    for count in (10, 1000):
        roots = {}
        for steps in (1, STEPS):
            root = tree(count)
            plan_with_steps(root, steps)
            shutil.copytree(os.path.join(root, "boot/bootstate"), root + "/saved")
            roots[steps] = root
        per_step, reference = [], []
        for _ in range(ROUNDS):
            times = {}
            for steps, root in roots.items():
                store = os.path.join(root, "boot/bootstate")
                shutil.rmtree(store)
                shutil.copytree(root + "/saved", store)
                started = time.perf_counter()
                subprocess.run([bootstate, "--root", root, "run", "--phase", "post-activation"],
                               check=True, capture_output=True)
                times[steps] = (time.perf_counter() - started) * 1000
            (true,) = medians(STEPS, ["/bin/true"])
            per_step.append((times[STEPS] - times[1]) / (STEPS - 1))
            reference.append(true)
        per_step.sort()
        reference.sort()
        p, r = per_step[len(per_step) // 2], reference[len(reference) // 2]
        print("(c) %4d applied: %.3f ms per step (marginal, median of %d), fork+exec /bin/true "
              "%.3f ms: %.2fx (load %.1f)" % (count, p, ROUNDS, r, p / r, os.getloadavg()[0]))
        for root in roots.values():
            shutil.rmtree(root)


if __name__ == "__main__":
    try:
        print("commit %s" % subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip())
        bench_idle_and_status()
        bench_per_step()
    finally:
        shutil.rmtree(binaries)

#!/usr/bin/env python3
"""What one commit writes (issue #17 item 2): bytes pwritten into the slot files per commit,
against the slot's size, for a run of N /bin/true command steps (BENCH_STEPS, default 40) on a
store of 10, 1,000 and 10,000 applied migrations (BENCH_SIZES). Counted with strace (exact,
not timed, so the machine's load does not matter).

  python3 bench/cli/commit_bytes.py BUILD_DIR

The first two commits of a run may rewrite a slot whole (a slot written by an older layout, or
a record that outgrew its room); the median is what a step's commit costs.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  (the same trees as the scaling benchmark)

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10 1000 10000").split()]


def slot_writes(root):
    trace = os.path.join(root, "strace.txt")
    subprocess.run(["strace", "-f", "-e", "trace=openat,pwrite64,fdatasync", "-o", trace,
                    scale.bootstate, "--root", root, "run", "--phase", "post-activation"],
                   check=True, capture_output=True)
    slot_fds, writes, commits, current = set(), [], 0, 0
    with open(trace) as lines:
        for line in lines:
            opened = re.search(r'openat\(\w+, "([^"]*)".* = (\d+)$', line)
            if opened:  # a descriptor number is reused: only the last open of it counts
                fd = int(opened.group(2))
                if re.fullmatch(r"state\.[01]", opened.group(1)):
                    slot_fds.add(fd)
                else:
                    slot_fds.discard(fd)
                continue
            written = re.search(r"pwrite64\((\d+),.* = (\d+)$", line)
            if written and int(written.group(1)) in slot_fds:
                current += int(written.group(2))
                continue
            synced = re.search(r"fdatasync\((\d+)\)", line)
            if synced and int(synced.group(1)) in slot_fds:
                writes.append(current)
                commits += 1
                current = 0
    return writes


if __name__ == "__main__":
    if shutil.which("strace") is None:
        sys.exit("commit_bytes.py needs strace")
    for count in SIZES:
        root = scale.tree(count)
        scale.plan_with_steps(root, scale.STEPS)
        writes = slot_writes(root)
        size = os.path.getsize(scale.slot_of(root))
        print("%5d applied: %d commits, bytes per commit: median %d, first two %d and %d, "
              "largest later %d; slot file %d bytes (median/slot = %.4f)" %
              (count, len(writes), statistics.median(writes), writes[0], writes[1],
               max(writes[2:]), size, statistics.median(writes) / size))
        shutil.rmtree(root)

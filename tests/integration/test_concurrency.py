"""Every read-modify-write of the store happens under one lock (issue 13, item 11): a decision
taken while `run` advances a phase waits for it and then takes effect, parallel decisions all
land, and a second `run` waits, then refuses naming the holder. Real processes race here."""

import calendar
import fcntl
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import time
import unittest

from harness import BOOTSTATE, Machine, STEP_TOOL, command_step


class Concurrency(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        m = self.machine
        m.write_plan("gen1", [])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()

    def tearDown(self):
        self.machine.cleanup()

    def start(self, *arguments):
        return subprocess.Popen([BOOTSTATE, "--root", self.machine.root] + list(arguments),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_file(self, path, seconds=30):
        deadline = time.monotonic() + seconds
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, "never appeared: " + path)
            time.sleep(0.02)

    def slow_plan(self, seconds, extra=()):
        """gen2: a required migration whose step says it started, then sleeps `seconds`."""
        m = self.machine
        started = m.path("/var/lib/slow-started")
        script = 'echo started > "$1" && exec "$2" sleep "$3"'
        slow = {"id": "slow", "policy": "required", "steps": [command_step(
            "s", ["/bin/sh", "-c", script, "sh", started, STEP_TOOL, str(seconds)],
            idempotent=True)]}
        m.write_plan("gen2", [slow] + list(extra))
        m.boot_into("gen2")
        return started

    def test_decline_during_a_run_waits_and_takes_effect(self):
        m = self.machine
        later = {"id": "later", "policy": "recommended", "steps": [command_step(
            "l", [STEP_TOOL, "append", m.path("/var/lib/log"), "later ran"],
            phase="pre-switch-root")]}
        started = self.slow_plan(5, [later])
        run = self.start("run", "--phase", "post-activation")
        self.wait_for_file(started)
        decline = m.bootstate("decline", "later")
        # The decline could only commit after the run's last commit: the run is over.
        self.assertIsNotNone(run.poll(), "decline returned while the run still held the store")
        self.assertEqual(decline.returncode, 0, decline.stderr)
        self.assertIn("waiting for the state store, held by pid %d" % run.pid, decline.stderr)
        run.communicate()
        self.assertEqual(m.migration("later")["state"], "declined")
        self.assertEqual(m.migration("slow")["state"], "applied")
        # And the next boot does not run it.
        m.reboot()
        m.boot()
        self.assertEqual(m.lines("/var/lib/log"), [])
        self.assertEqual(m.migration("later")["state"], "declined")

    def test_twenty_parallel_accepts_all_land(self):
        m = self.machine
        ids = ["opt%02d" % index for index in range(20)]
        m.write_plan("gen2", [{"id": migration, "policy": "optional", "steps": [command_step(
            "x", [STEP_TOOL, "append", m.path("/var/lib/log"), migration])]}
            for migration in ids])
        m.boot_into("gen2")
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual({m.migration(i)["readiness"] for i in ids}, {"needs accept"})
        # All 20 start at the same instant: each first waits for EOF on one FIFO, which every
        # reader sees when the test opens and closes its writing end.
        gate = m.path("/var/lib/gate")
        os.mkfifo(gate)
        processes = [subprocess.Popen(
            ["/bin/sh", "-c", 'cat "$0" >/dev/null && exec "$@"', gate, BOOTSTATE, "--root",
             m.root, "accept", migration], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for migration in ids]
        time.sleep(0.5)  # every cat is blocked in open()
        with open(gate, "w"):
            pass
        for process in processes:
            out, err = process.communicate(timeout=120)
            self.assertEqual(process.returncode, 0, err)
        status = m.status()
        readiness = {row["id"]: row["readiness"] for row in status["migrations"]}
        self.assertEqual([i for i in ids if readiness[i] == "needs accept"], [])
        self.assertEqual(m.run("post-activation").returncode, 0)
        self.assertEqual(sorted(m.lines("/var/lib/log")), ids)

    def test_a_second_run_waits_then_refuses_naming_the_holder(self):
        m = self.machine
        started = self.slow_plan(14)
        earliest = int(time.time())
        first = self.start("run", "--phase", "post-activation")
        self.wait_for_file(started)
        before = m.store_bytes()
        second = m.run("post-activation")
        self.assertIsNone(first.poll())
        self.assertEqual(second.returncode, 2, second.stderr)
        # docs/DESIGN.md's form; T is the lock file's mtime, written when the holder took it.
        held = re.search(r"held by pid %d \(bootstate run --phase post-activation, since "
                         r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\);" % first.pid, second.stderr)
        self.assertIsNotNone(held, second.stderr)
        since = calendar.timegm(time.strptime(held.group(1), "%Y-%m-%d %H:%M:%S"))
        self.assertGreaterEqual(since, earliest)
        self.assertLessEqual(since, time.time())
        self.assertIn("nothing was changed", second.stderr)
        self.assertEqual(m.store_bytes(), before)
        first.communicate()
        self.assertEqual(first.returncode, 0)
        self.assertEqual(m.migration("slow")["state"], "applied")


class ReadersDuringACommit(unittest.TestCase):
    """`status` takes no lock (docs/DESIGN.md): while a run writes a slot in place, a status can
    read it half written. That slot fails its checksum though nothing is wrong, and status told
    the operator "state slot N ... is unusable" (1 of 56 statuses during a 200-step run, found
    in session 10). While the store lock is held, a reader reads such a load again."""

    def setUp(self):
        self.machine = Machine()
        m = self.machine
        m.write_plan("gen1", [{"id": "app", "policy": "required", "steps": [
            command_step("one", [STEP_TOOL, "append", m.path("/var/lib/log"), "one"])]}])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        slots = sorted(glob.glob(m.path("/boot/bootstate/state.[01]")))
        self.assertEqual(len(slots), 2)
        self.slots = slots

    def tearDown(self):
        self.machine.cleanup()

    def hold_lock(self):
        path = self.machine.path("/run/bootstate/lock")
        fd = os.open(path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.addCleanup(os.close, fd)
        return fd

    def tear(self, slot):
        """Garbles the middle of a slot as a write in progress would; returns its bytes."""
        with open(slot, "rb") as file:
            good = file.read()
        middle = len(good) // 2
        with open(slot, "r+b") as file:
            file.seek(middle)
            file.write(b"#" * 64)
        return good

    @staticmethod
    def wait_until_sleeping(process, seconds=10):
        """True once `process` is in nanosleep/clock_nanosleep (x86_64 numbers 35, 230), read
        from /proc/PID/syscall; False when it exits first."""
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with open("/proc/%d/syscall" % process.pid) as file:
                    if file.read().split(" ")[0] in ("35", "230"):
                        return True
            except OSError:
                pass
            time.sleep(0.001)
        return False

    def test_a_slot_being_written_is_read_again_not_reported(self):
        if platform.machine() != "x86_64":
            self.skipTest("wait_until_sleeping knows x86_64's system call numbers only")
        self.hold_lock()  # as a run does for its whole phase
        slot = self.slots[0]
        good = self.tear(slot)
        status = subprocess.Popen([BOOTSTATE, "--root", self.machine.root, "--json", "status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The "write" ends only once status has read the torn slot and paused to read again:
        # otherwise a slow start would read the mended slot, and the test would prove nothing.
        self.assertTrue(self.wait_until_sleeping(status), "status never paused to read again")
        with open(slot, "r+b") as file:
            file.write(good)
        out, err = status.communicate(timeout=30)
        self.assertEqual(status.returncode, 0, err)
        self.assertNotIn("unusable", err)
        self.assertEqual(json.loads(out)["warnings"], [])

    def test_a_reader_never_takes_the_lock_not_even_for_an_instant(self):
        # A shared flock, however brief, makes a `run` starting at that moment find the lock
        # busy, wait a poll and say it waits: a reader only looks (/proc/locks).
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed")
        self.hold_lock()
        self.tear(self.slots[0])  # a load with a warning, so the reader asks about the lock
        trace = self.machine.path("/trace")
        result = subprocess.run(["strace", "-f", "-e", "trace=flock", "-o", trace, BOOTSTATE,
                                 "--root", self.machine.root, "status"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(trace) as file:
            calls = [line for line in file if "flock(" in line]
        self.assertEqual(calls, [])

    def test_a_slot_that_stays_damaged_is_still_reported(self):
        self.hold_lock()
        self.tear(self.slots[0])
        started = time.monotonic()
        result = self.machine.bootstate("status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("unusable", result.stdout + result.stderr)
        self.assertLess(time.monotonic() - started, 5)

    def test_without_a_writer_a_damaged_slot_is_reported_at_once(self):
        self.tear(self.slots[0])
        result = self.machine.bootstate("status")
        self.assertIn("unusable", result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()

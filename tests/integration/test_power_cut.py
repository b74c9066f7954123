"""Power cuts at every commit point (tier 3), with the real binary: SIGKILL before, after, or in
the middle of each state write (BOOTSTATE_TEST_CRASH_AT), then reboot and go on. Every run must
end complete with each non-idempotent step applied exactly once (they have a `check`)."""

import glob
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BOOTSTATE, Machine, PHASES, STEP_TOOL, command_step

MODES = ("before", "after", "torn")
MAX_BOOTS = 8


def plan(machine, with_check=True):
    log = machine.path("/var/lib/log")

    def step(step_id, **extra):
        if with_check:
            extra["check"] = [STEP_TOOL, "has", log, step_id]
        return command_step(step_id, [STEP_TOOL, "append", log, step_id], **extra)

    return [{"id": "app", "policy": "required", "backup": ["/var/lib/data"],
             "steps": [step("one"), step("two", reboot=True), step("three")]}]


def boot_with_crash(machine, crash_phase, crash_spec):
    """One boot; the process of `crash_phase` gets the crash hook. Returns the last status."""
    for phase in PHASES:
        env = {"BOOTSTATE_TEST_CRASH_AT": crash_spec} if phase == crash_phase else None
        status = machine.run(phase, env=env).returncode
        if status != 0:
            return status
    return 0


class PowerCuts(unittest.TestCase):
    def run_to_completion(self, machine):
        for _ in range(MAX_BOOTS):
            machine.reboot()
            status = machine.boot()
            if status == 0:
                return
            self.assertEqual(status, 4, "only reboots may interrupt the run")
        self.fail("did not complete within %d boots" % MAX_BOOTS)

    def test_every_commit_point_of_both_boots(self):
        cases = 0
        # The initrd phases already counted the boot, so post-activation commits: in boot 1
        # backup, one running/done, two running/done (5); in boot 2 three running/done and
        # the attempt complete (3). One point past the last: no crash at all.
        for crash_boot, commits in ((1, 5), (2, 3)):
            for point in range(1, commits + 2):
                for mode in MODES:
                    with self.subTest(boot=crash_boot, commit=point, mode=mode):
                        machine = Machine()
                        try:
                            machine.write_plan("gen2", plan(machine))
                            machine.boot_into("gen2")
                            spec = "%d:%s" % (point, mode)
                            if crash_boot == 1:
                                status = boot_with_crash(machine, "post-activation", spec)
                            else:
                                self.assertEqual(machine.boot(), 4)
                                machine.reboot()
                                status = boot_with_crash(machine, "post-activation", spec)
                            self.assertIn(status, (0, 4, -9))
                            if status != 0:
                                self.run_to_completion(machine)
                            self.assertEqual(machine.lines("/var/lib/log"),
                                             ["one", "two", "three"])
                            state = machine.status()
                            self.assertEqual(state["attempt"]["state"], "complete")
                            self.assertEqual(state["migrations"][0]["state"], "applied")
                            cases += 1
                        finally:
                            machine.cleanup()
        self.assertEqual(cases, (5 + 1 + 3 + 1) * len(MODES))

    def test_interrupted_step_without_check_fails_as_not_idempotent(self):
        machine = Machine()
        try:
            machine.write_plan("gen2", plan(machine, with_check=False))
            machine.boot_into("gen2")
            # Commit 2 is "one: running", commit 3 its outcome: cut the power between them.
            self.assertEqual(boot_with_crash(machine, "post-activation", "3:before"), -9)
            machine.reboot()
            self.assertEqual(machine.boot(), 1)
            step = machine.migration("app")["steps"][0]
            self.assertEqual(step["state"], "failed")
            self.assertIn("not idempotent", step["message"])
            self.assertEqual(machine.lines("/var/lib/log"), ["one"])
        finally:
            machine.cleanup()

    def test_interrupted_step_with_check_is_not_run_twice(self):
        machine = Machine()
        try:
            machine.write_plan("gen2", plan(machine))
            machine.boot_into("gen2")
            self.assertEqual(boot_with_crash(machine, "post-activation", "3:before"), -9)
            self.assertEqual(machine.lines("/var/lib/log"), ["one"])
            self.run_to_completion(machine)
            self.assertEqual(machine.lines("/var/lib/log"), ["one", "two", "three"])
        finally:
            machine.cleanup()

    def cut_each_commit(self, setup, phase, check, limit=40):
        """Cuts the power at every commit of `phase` in the boot after `setup` (before, after,
        torn), boots on to completion, and runs `check`. Points are counted up until the phase
        makes no more commits (its run is not killed). Returns how many cases ran."""
        cases = 0
        for point in range(1, limit):
            crashed_here = False
            for mode in MODES:
                with self.subTest(phase=phase, commit=point, mode=mode):
                    machine = Machine()
                    try:
                        setup(machine)
                        status = boot_with_crash(machine, phase, "%d:%s" % (point, mode))
                        crashed_here = crashed_here or status == -9
                        self.assertIn(status, (0, 4, -9))
                        if status != 0:
                            self.run_to_completion(machine)
                        check(machine)
                        cases += 1
                    finally:
                        machine.cleanup()
            if not crashed_here:
                return cases
        self.fail("%s made more than %d commits" % (phase, limit))

    def test_every_commit_of_the_initrd_phases(self):
        def setup(machine):
            log = machine.path("/var/lib/log")

            def step(step_id, phase):
                return command_step(step_id, [STEP_TOOL, "append", log, step_id], phase=phase,
                                    check=[STEP_TOOL, "has", log, step_id])

            machine.write_plan("gen2", [{"id": "early", "policy": "required", "steps": [
                step("pre-mount", "initrd-pre-mount"), step("pre-switch", "pre-switch-root"),
                step("post", "post-activation")]}])
            machine.boot_into("gen2")

        def check(machine):
            self.assertEqual(machine.lines("/var/lib/log"), ["pre-mount", "pre-switch", "post"])
            state = machine.status()
            self.assertEqual(state["attempt"]["state"], "complete")
            self.assertEqual(state["migrations"][0]["state"], "applied")

        for phase in ("initrd-pre-mount", "pre-switch-root"):
            # At least one commit each (the boot is recorded), plus the run past the last.
            self.assertGreaterEqual(self.cut_each_commit(setup, phase, check), 2 * len(MODES))

    def test_every_commit_of_an_undo_with_backup_restore(self):
        """gen2 converted /var/lib/data (backup taken) and wrote more; the admin boots gen1: a
        cut at any commit of that boot leaves the old or the new state, and it completes with
        the backup restored and the newer data displaced, not lost."""
        def setup(machine):
            data = machine.path("/var/lib/data")
            os.makedirs(data)
            with open(data + "/db", "w") as file:
                file.write("v1\n")
            machine.write_plan("gen1", [])
            machine.boot_into("gen1")
            self.assertEqual(machine.boot(), 0)
            machine.reboot()
            machine.write_plan("gen2", [{"id": "conv", "policy": "required",
                                         "backup": ["/var/lib/data"],
                                         "steps": [command_step("to-v2", [
                                             STEP_TOOL, "write", data + "/db", "v2\n"])]}])
            machine.boot_into("gen2")
            self.assertEqual(machine.boot(), 0)
            with open(data + "/orders", "w") as file:
                file.write("order 1\n")
            machine.reboot()
            machine.boot_into("gen1")

        def check(machine):
            with open(machine.path("/var/lib/data/db")) as file:
                self.assertEqual(file.read(), "v1\n")
            self.assertFalse(os.path.exists(machine.path("/var/lib/data/orders")))
            kept = glob.glob(machine.path("/var/lib/bootstate/displaced/*/conv/var/lib/data/orders"))
            self.assertEqual(len(kept), 1, kept)
            self.assertEqual(machine.migration("conv")["state"], "undone")

        for phase in PHASES:
            self.assertGreaterEqual(self.cut_each_commit(setup, phase, check), len(MODES))


class TheCutsCutTheWriteARunMakes(unittest.TestCase):
    """The cuts above prove only the path they cut. Without the hook, a commit after a slot's
    first in a run writes just the pages it changed, trusting this run's own last write of that
    slot (SlotFiles::write_changed); a hook that sent every commit through the read-back path
    left that one untested by every power cut (found in session 10)."""

    def slot_reads_and_writes(self, env):
        machine = Machine()
        trace_dir = tempfile.mkdtemp(prefix="bootstate-trace-")
        try:
            log = machine.path("/var/lib/log")
            machine.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [
                command_step("s%d" % i, [STEP_TOOL, "append", log, "s%d" % i])
                for i in range(4)]}])
            machine.boot_into("gen2")
            for phase in PHASES[:-1]:
                self.assertEqual(machine.run(phase).returncode, 0)
            trace = os.path.join(trace_dir, "trace")
            environment = dict(os.environ)
            environment.pop("BOOTSTATE_TEST_CRASH_AT", None)
            environment.update(env)
            result = subprocess.run(
                ["strace", "-f", "-y", "-e", "trace=pread64,pwrite64", "-o", trace, BOOTSTATE,
                 "--root", machine.root, "run", "--phase", "post-activation"],
                capture_output=True, text=True, env=environment, timeout=120)
            if result.returncode != 0 and "ptrace" in result.stderr:
                raise unittest.SkipTest("strace cannot trace here: " + result.stderr.strip())
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(machine.lines("/var/lib/log"), ["s0", "s1", "s2", "s3"])
            counts = {"pread64": 0, "pwrite64": 0}
            with open(trace) as file:
                for line in file:
                    for call in counts:
                        if call + "(" in line and "/state." in line:
                            counts[call] += 1
            return counts
        finally:
            machine.cleanup()
            shutil.rmtree(trace_dir, ignore_errors=True)

    def test_a_hook_that_never_fires_changes_no_system_call(self):
        if shutil.which("strace") is None:
            raise unittest.SkipTest("strace is not installed")
        plain = self.slot_reads_and_writes({})
        hooked = self.slot_reads_and_writes({"BOOTSTATE_TEST_CRASH_AT": "1000:after"})
        self.assertGreater(plain["pwrite64"], 0)
        self.assertEqual(hooked, plain)

    def test_a_torn_commit_leaves_an_unusable_slot_and_the_run_goes_on_from_the_other(self):
        # Commit 1 of the phase is its first write of a slot (read back, write()); commit 3 goes
        # to the same slot again and trusts what commit 1 wrote (write_changed).
        for commit in (1, 3):
            with self.subTest(commit=commit):
                machine = Machine()
                try:
                    log = machine.path("/var/lib/log")
                    machine.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [
                        command_step("s%d" % i, [STEP_TOOL, "append", log, "s%d" % i],
                                     check=[STEP_TOOL, "has", log, "s%d" % i])
                        for i in range(4)]}])
                    machine.boot_into("gen2")
                    for phase in PHASES[:-1]:
                        self.assertEqual(machine.run(phase).returncode, 0)
                    cut = machine.run("post-activation",
                                      env={"BOOTSTATE_TEST_CRASH_AT": "%d:torn" % commit})
                    self.assertEqual(cut.returncode, -9)
                    status = machine.bootstate("status")
                    self.assertIn("is unusable", status.stderr + status.stdout)
                    self.assertEqual(machine.run("post-activation").returncode, 0)
                    self.assertEqual(machine.lines("/var/lib/log"), ["s0", "s1", "s2", "s3"])
                    self.assertEqual(machine.status()["attempt"]["state"], "complete")
                finally:
                    machine.cleanup()


if __name__ == "__main__":
    unittest.main()

"""Power cuts at every commit point (tier 3), with the real binary: SIGKILL before, after, or in
the middle of each state write (BOOTSTATE_TEST_CRASH_AT), then reboot and go on. Every run must
end complete with each non-idempotent step applied exactly once (they have a `check`)."""

import unittest

from harness import Machine, PHASES, STEP_TOOL, command_step

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


if __name__ == "__main__":
    unittest.main()

"""Independent migrations run in parallel (`run --jobs N`, issue #15 item 4), with the real
binary against a --root tree: two sleeping migrations take about the time of one, `status --json`
shows both running while they run, `--jobs 1` runs them one after the other, and a power cut at
any commit while two run (SIGKILL before, after or in the middle of the state write) leaves a
state from which every step with a `check` runs exactly once and the attempt completes."""

import collections
import os
import subprocess
import time
import unittest

from harness import BOOTSTATE, Machine, PHASES, STEP_TOOL, command_step

MODES = ("before", "after", "torn")
SLEEP = 2  # seconds each sleeping step takes


def sleeping(migration_id):
    return {"id": migration_id, "policy": "required",
            "steps": [command_step("nap", [STEP_TOOL, "sleep", str(SLEEP)])]}


def running_steps(status):
    return sorted("%s/%s" % (migration["id"], step["id"])
                  for migration in status["migrations"]
                  for step in migration["steps"] if step["state"] == "running")


class Parallel(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)

    def run_post_activation(self, *extra):
        """Runs post-activation (after the initrd phases) and watches `status --json` while it
        runs. Returns (exit status, seconds it took, the most steps seen running at once)."""
        machine = self.machine
        for phase in PHASES[:2]:
            self.assertEqual(machine.run(phase).returncode, 0)
        started = time.monotonic()
        run = subprocess.Popen([BOOTSTATE, "--root", machine.root, "run", "--phase",
                                "post-activation"] + list(extra),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        most = []
        while run.poll() is None:
            result = machine.bootstate("--json", "status")
            if result.returncode == 0:
                import json
                seen = running_steps(json.loads(result.stdout))
                if len(seen) > len(most):
                    most = seen
            time.sleep(0.1)
        took = time.monotonic() - started
        _, stderr = run.communicate()
        self.assertEqual(run.returncode, 0, stderr)
        return took, most

    def test_two_sleeping_migrations_take_the_time_of_one(self):
        self.machine.write_plan("gen2", [sleeping("first"), sleeping("second")])
        self.machine.boot_into("gen2")
        took, most = self.run_post_activation()  # the default: --jobs 4
        self.assertEqual(most, ["first/nap", "second/nap"])
        self.assertLess(took, 2 * SLEEP - 0.5, "one after the other, not at once")
        state = self.machine.status()
        self.assertEqual(state["attempt"]["state"], "complete")

    def test_jobs_1_runs_them_one_after_the_other(self):
        self.machine.write_plan("gen2", [sleeping("first"), sleeping("second")])
        self.machine.boot_into("gen2")
        took, most = self.run_post_activation("--jobs", "1")
        self.assertEqual(len(most), 1)
        self.assertGreaterEqual(took, 2 * SLEEP)

    def test_after_still_orders_them(self):
        second = sleeping("second")
        second["after"] = ["first"]
        self.machine.write_plan("gen2", [sleeping("first"), second])
        self.machine.boot_into("gen2")
        took, most = self.run_post_activation("--jobs", "4")
        self.assertEqual(len(most), 1)
        self.assertGreaterEqual(took, 2 * SLEEP)

    def test_a_reboot_request_lets_the_independent_migrations_finish_first(self):
        log = self.machine.path("/var/lib/log")

        def step(step_id, **extra):
            return command_step(step_id, [STEP_TOOL, "append", log, step_id], **extra)

        self.machine.write_plan("gen2", [
            {"id": "kernel", "policy": "required",
             "steps": [step("install", reboot=True), step("verify")]},
            {"id": "slow", "policy": "required",
             "steps": [command_step("nap", [STEP_TOOL, "sleep", "1"]), step("slow-done")]},
            {"id": "after-kernel", "policy": "required", "after": ["kernel"],
             "steps": [step("needs-new-kernel")]}])
        self.machine.boot_into("gen2")
        self.assertEqual(self.machine.boot(), 4)  # a reboot is needed (--root: no reboot)
        self.assertEqual(sorted(self.machine.lines("/var/lib/log")), ["install", "slow-done"])
        self.assertEqual(self.machine.migration("slow")["state"], "applied")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        self.assertEqual(self.machine.lines("/var/lib/log")[2:], ["verify", "needs-new-kernel"])

    def test_bad_jobs_is_refused_with_exit_2(self):
        self.machine.write_plan("gen2", [sleeping("first")])
        self.machine.boot_into("gen2")
        for value in ("0", "65", "two", "-1", ""):
            with self.subTest(jobs=value):
                result = self.machine.bootstate("run", "--phase", "post-activation",
                                                "--jobs", value)
                self.assertEqual(result.returncode, 2)
                self.assertIn("--jobs", result.stderr)
        self.assertEqual(self.machine.store_bytes(), {})


def two_at_once_plan(machine):
    """a and b of two steps each, independent; c after both. Every step appends its name to the
    log and has a check that finds it there."""
    log = machine.path("/var/lib/log")

    def step(step_id):
        return command_step(step_id, [STEP_TOOL, "append", log, step_id],
                            check=[STEP_TOOL, "has", log, step_id])

    return [{"id": "a", "policy": "required", "steps": [step("a1"), step("a2")]},
            {"id": "b", "policy": "required", "steps": [step("b1"), step("b2")]},
            {"id": "c", "policy": "required", "after": ["a", "b"], "steps": [step("c1")]}]


class PowerCutsWhileTwoRun(unittest.TestCase):
    def test_every_commit_point_of_the_parallel_phase(self):
        cases = 0
        two_running_cut = False
        for point in range(1, 40):
            crashed_here = False
            for mode in MODES:
                with self.subTest(commit=point, mode=mode):
                    machine = Machine()
                    try:
                        machine.write_plan("gen2", two_at_once_plan(machine))
                        machine.boot_into("gen2")
                        for phase in PHASES[:2]:
                            self.assertEqual(machine.run(phase).returncode, 0)
                        status = machine.run("post-activation", env={
                            "BOOTSTATE_TEST_CRASH_AT": "%d:%s" % (point, mode)}).returncode
                        self.assertIn(status, (0, -9))
                        if status == -9:
                            crashed_here = True
                            cut = machine.status()
                            if len(running_steps(cut)) >= 2:
                                two_running_cut = True
                            for _ in range(4):
                                machine.reboot()
                                if machine.boot() == 0:
                                    break
                        log = collections.Counter(machine.lines("/var/lib/log"))
                        self.assertEqual(log, collections.Counter(
                            ["a1", "a2", "b1", "b2", "c1"]), "every step exactly once")
                        self.assertLess(machine.lines("/var/lib/log").index("a2"),
                                        machine.lines("/var/lib/log").index("c1"))
                        self.assertLess(machine.lines("/var/lib/log").index("b2"),
                                        machine.lines("/var/lib/log").index("c1"))
                        state = machine.status()
                        self.assertEqual(state["attempt"]["state"], "complete")
                        for migration in state["migrations"]:
                            self.assertEqual(migration["state"], "applied", migration["id"])
                        cases += 1
                    finally:
                        machine.cleanup()
            if not crashed_here:
                break
        # Five starts and five ends, the completion; and the run past the last commit.
        self.assertGreaterEqual(cases, 12 * len(MODES))
        self.assertTrue(two_running_cut, "no cut found two steps running at once")


if __name__ == "__main__":
    unittest.main()

"""After the state store was lost, a step that may neither run twice nor be checked is held
until `bootstate accept ID` (docs/DESIGN.md "Nothing lost"). `status`, `preview` and `run` must
agree on it — also before the first `run` moved the corrupt slots aside — and the operator's
`accept` must release it however many boots went by.
"""

import glob
import os
import unittest

from harness import Machine, PHASES, STEP_TOOL, command_step


class HeldAfterLoss(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.log = self.machine.path("/var/lib/log")
        self.machine.write_plan("gen1", [])
        self.machine.boot_into("gen1")
        self.assertEqual(self.machine.boot(), 0)
        self.machine.write_plan("gen2", [{
            "id": "once", "policy": "required",
            "steps": [command_step("a", [STEP_TOOL, "append", self.log, "a"])]}])

    def tearDown(self):
        self.machine.cleanup()

    def corrupt_slots(self):
        for path in glob.glob(self.machine.path("/boot/bootstate/state.*")):
            with open(path, "wb") as file:
                file.write(b"garbage" * 10)

    def boot(self):
        self.machine.reboot()
        return [self.machine.run(phase).returncode for phase in PHASES]

    def assert_views_say_held(self):
        m = self.machine
        migration = m.migration("once")
        self.assertEqual(migration["readiness"], "held", migration)
        self.assertIn("bootstate accept once", migration["detail"])
        preview = m.bootstate("preview")
        self.assertEqual(preview.returncode, 1, preview.stdout + preview.stderr)
        self.assertIn("held", preview.stdout)
        self.assertNotIn("run once/a", preview.stdout)

    def test_status_and_preview_say_held_before_the_run_moved_the_slots_aside(self):
        m = self.machine
        self.corrupt_slots()
        m.boot_into("gen2")
        self.assert_views_say_held()  # what the run below will do
        self.assertEqual(self.boot(), [0, 0, 1])
        self.assert_views_say_held()
        self.assertEqual(m.lines("/var/lib/log"), [])

    def test_status_and_preview_say_held_when_only_moved_aside_slots_remain(self):
        # A run moved the slots aside and lost power before its first commit.
        m = self.machine
        for slot in ("state.0", "state.1"):
            path = m.path("/boot/bootstate/" + slot)
            if os.path.exists(path):
                os.rename(path, path + ".broken")
        m.boot_into("gen2")
        self.assert_views_say_held()
        self.assertEqual(self.boot(), [0, 0, 1])
        self.assertEqual(m.lines("/var/lib/log"), [])

    def test_accept_releases_a_held_migration_after_the_loop_breaker_failed_the_attempt(self):
        m = self.machine
        self.corrupt_slots()
        m.boot_into("gen2")
        for _ in range(6):  # the operator does not answer for a while
            self.boot()
        self.assertEqual(m.lines("/var/lib/log"), [])
        result = m.bootstate("accept", "once")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.boot(), [0, 0, 0])
        self.assertEqual(m.lines("/var/lib/log"), ["a"])
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(status["last_good"], "/nix/store/gen2")


if __name__ == "__main__":
    unittest.main()

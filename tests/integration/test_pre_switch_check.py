"""The module's pre-switch check (nixos/pre-switch-check.sh, what system.preSwitchChecks runs
before `nixos-rebuild switch|boot|test`) with the real binary over a --root tree: a check's
unresolved error item refuses every action but dry-activate, the refusal names the commands that
resolve it, and after the operator runs the printed command the same check lets it through
(docs/DESIGN.md "Checks and resolutions": "switch and boot refused with the commands that
resolve it")."""

import os
import re
import subprocess
import unittest

from harness import BOOTSTATE, Machine

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../nixos/pre-switch-check.sh")
CHECK = """#!/bin/sh
[ -e "$BOOTSTATE_ROOT/var/lib/app/converted" ] && exit 0
printf '{"id": "app-old-format", "severity": "error", "message": "data in the old format", "resolutions": ["convert"]}\\n'
"""


class PreSwitchCheckTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        check = self.machine.script("check", CHECK)
        os.makedirs(self.machine.path("/var/lib/app"))
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        self.assertEqual(self.machine.boot(), 0)
        convert = {"id": "convert", "description": "convert the data",
                   "steps": [{"id": "c", "phase": "post-activation", "kind": "command",
                              "command": ["/bin/touch", self.machine.path("/var/lib/app/converted")]}]}
        self.g2 = self.machine.write_plan("g2", [], checks=[
            {"id": "app", "description": "data format", "phase": "post-activation",
             "command": [check], "resolutions": [convert]}])

    def pre_switch(self, action):
        # BOOTSTATE_TREE: the script looks for NEW_TOPLEVEL/bootstate/plan.json in the tree.
        return subprocess.run(["bash", SCRIPT, self.g2, action, BOOTSTATE, "--root",
                               self.machine.root],
                              env=dict(os.environ, BOOTSTATE_TREE=self.machine.root),
                              capture_output=True, text=True, timeout=120)

    def test_an_error_item_refuses_until_the_printed_command_ran(self):
        for action in ("switch", "boot", "test"):
            refused = self.pre_switch(action)
            self.assertEqual(refused.returncode, 1, action + ": " + refused.stdout + refused.stderr)
            self.assertIn("is blocked; not switching", refused.stderr)
        self.assertEqual(self.pre_switch("dry-activate").returncode, 0)
        command = re.search(r"`(bootstate choose [^`]*)`", refused.stderr)
        self.assertIsNotNone(command, refused.stderr)
        # The command as printed (with the tree's --root added, as on a real machine it is /).
        words = command.group(1).split()
        self.assertEqual(words[1:4], ["choose", "--plan", self.g2])
        chosen = self.machine.bootstate(*words[1:])
        self.assertEqual(chosen.returncode, 0, chosen.stderr)
        for action in ("switch", "boot"):
            allowed = self.pre_switch(action)
            self.assertEqual(allowed.returncode, 0, action + ": " + allowed.stdout + allowed.stderr)


if __name__ == "__main__":
    unittest.main()

"""Items a running step reports through $BOOTSTATE_ITEMS, through the binary (docs/DESIGN.md
"Checks and resolutions": "A step may report new items while it runs"). An error item fails
the step (and a required migration's attempt: fallback), the item stays in `status` with the
step as its source, and the next run of the step replaces what it reported. The file is read
without following a link and without blocking on a FIFO."""

import json
import os
import unittest

from harness import AppMachineTest, command_step

# Reports an error until the operator fixed the data, then a warning. Run directly (#!), never
# through a shell by bootstate.
PROBE = """#!/bin/sh
if [ -e "$BOOTSTATE_ROOT/var/lib/app/fixed" ]; then
  printf '{"id": "schema-drift", "severity": "warning", "message": "fixed by hand"}\\n' > "$BOOTSTATE_ITEMS"
else
  printf '{"id": "schema-drift", "severity": "error", "message": "table orders differs"}\\n' > "$BOOTSTATE_ITEMS"
fi
echo ran >> "$BOOTSTATE_ROOT/var/lib/app/runs"
"""
# Leaves something that is not a regular file where the report goes.
LINK = """#!/bin/sh
printf '{"id": "x", "severity": "warning", "message": "via a link"}\\n' > "$BOOTSTATE_WORK_DIR/elsewhere"
ln -s "$BOOTSTATE_WORK_DIR/elsewhere" "$BOOTSTATE_ITEMS"
"""
# A step with a `check`: its effect is a marker file; it reports an error item after making it.
MARK_AND_REPORT = """#!/bin/sh
touch "$BOOTSTATE_ROOT/var/lib/app/marked"
printf '{"id": "half-done", "severity": "error", "message": "rows without owner"}\\n' > "$BOOTSTATE_ITEMS"
echo ran >> "$BOOTSTATE_ROOT/var/lib/app/runs"
"""
MARKED = """#!/bin/sh
test -e "$BOOTSTATE_ROOT/var/lib/app/marked"
"""
FIFO = """#!/bin/sh
mkfifo "$BOOTSTATE_ITEMS"
"""


class StepItemsTest(AppMachineTest):
    def script(self, name, text):
        return self.machine.script(name, text)

    def boot_g2(self, script):
        self.machine.write_plan("g2", [{"id": "m", "description": "probe", "policy": "required",
                                        "steps": [command_step("probe", [script])],
                                        "undo": [command_step("back", ["/bin/true"])]}])
        self.machine.boot_into("g2")
        self.machine.reboot()
        return self.machine.boot()

    def items(self):
        return {item["id"]: item for item in self.machine.status()["items"]}

    def test_an_error_item_fails_the_step_and_stays_visible_until_the_step_runs_again(self):
        machine = self.machine
        self.assertEqual(self.boot_g2(self.script("probe", PROBE)), 1)
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertIn('reported error "schema-drift": table orders differs',
                      status["attempt"]["reason"])
        item = self.items()["schema-drift"]
        self.assertEqual((item["check"], item["severity"], item["state"]), ("m/probe", "error", "open"))
        self.assertEqual(item["resolutions"], [])
        # The fallback boots g1; its status shows the item with what to do, and that command
        # works as printed from there.
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        text = machine.bootstate("status").stdout
        self.assertIn("schema-drift (open, step m/probe): table orders differs", text)
        command = "bootstate retry --plan %s m" % machine.toplevel("g2")
        self.assertIn("fix the cause, then `%s`" % command, text)
        # A step's item offers nothing to choose: a clear refusal, nothing written.
        before = machine.store_bytes()
        chosen = machine.bootstate("choose", "schema-drift", "anything")
        self.assertEqual(chosen.returncode, 2, chosen.stdout + chosen.stderr)
        self.assertEqual(machine.store_bytes(), before)

        # The operator fixes the data and retries: the step's new report replaces the old one.
        open(machine.path("/var/lib/app/fixed"), "w").close()
        retried = machine.bootstate(*command.split()[1:])
        self.assertEqual(retried.returncode, 0, retried.stdout + retried.stderr)
        self.assertIn("its next boot starts a new attempt", retried.stdout)
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0, machine.status())
        self.assertEqual(machine.status()["attempt"]["state"], "complete")
        item = self.items()["schema-drift"]
        self.assertEqual((item["severity"], item["message"]), ("warning", "fixed by hand"))
        self.assertEqual(machine.lines("/var/lib/app/runs"), ["ran", "ran"])

    def test_a_report_through_a_symlink_is_not_followed(self):
        self.assertEqual(self.boot_g2(self.script("link", LINK)), 1)
        reason = self.machine.status()["attempt"]["reason"]
        self.assertIn("$BOOTSTATE_ITEMS file could not be read", reason)
        self.assertNotIn("x", self.items())

    def test_a_fifo_in_place_of_the_report_neither_blocks_nor_passes(self):
        self.assertEqual(self.boot_g2(self.script("fifo", FIFO)), 1)
        self.assertIn("$BOOTSTATE_ITEMS file could not be read",
                      self.machine.status()["attempt"]["reason"])

    def test_a_power_cut_after_the_report_still_fails_the_step_its_check_calls_applied(self):
        # The run wrote its error item, then the power went before its end was committed. On the
        # next boot the step's check says its effect is in place; before, that alone made it
        # "done" and the report was never read (DESIGN: the one power-cut gap of
        # $BOOTSTATE_ITEMS). The interrupted run's report decides, as if its end had been
        # committed: the step fails, the item is recorded.
        machine = self.machine
        machine.write_plan("g2", [{"id": "m", "description": "probe", "policy": "required",
                                   "steps": [command_step("probe",
                                                          [self.script("mark", MARK_AND_REPORT)],
                                                          check=[self.script("marked", MARKED)])],
                                   "undo": [command_step("back", ["/bin/true"])]}])
        machine.boot_into("g2")
        machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            self.assertEqual(machine.run(phase).returncode, 0)
        # In post-activation commit 1 records the step running (the initrd phases opened the
        # attempt), commit 2 its end: cut before commit 2 is written.
        machine.run("post-activation", env={"BOOTSTATE_TEST_CRASH_AT": "2:before"})
        self.assertEqual(machine.migration("m")["steps"][0]["state"], "running")
        self.assertEqual(machine.lines("/var/lib/app/runs"), ["ran"])
        machine.reboot()
        self.assertEqual(machine.boot(), 1)
        self.assertEqual(machine.lines("/var/lib/app/runs"), ["ran"])  # the check, not a re-run
        status = machine.status()
        self.assertEqual(machine.migration("m")["steps"][0]["state"], "failed")
        self.assertEqual(status["attempt"]["state"], "failed")
        item = self.items()["half-done"]
        self.assertEqual((item["check"], item["severity"]), ("m/probe", "error"))


if __name__ == "__main__":
    unittest.main()

"""Resolutions offered by a running step's items, through the binary over boots of a --root tree
(issue #15, "generate new choices during execution"; docs/DESIGN.md "Items reported by a
running step"). A migration declares `resolutions`; its step reports an error item offering
one; the boot fails and falls back; `status` shows the item with the `bootstate choose`
command; after `choose`, the next boot runs MIGRATION.RESOLUTION, then the migration's step
again, which now passes; booting the other generation undoes the resolution. Failed before the
change: the plan was refused (`resolutions` was an unknown key of a migration)."""

import json
import os
import unittest

from harness import AppMachineTest, command_step

# Reports an error offering fix-it until the fix is in place. Run directly (#!), never through
# a shell by bootstate.
PROBE = """#!/bin/sh
echo probe >> "$BOOTSTATE_ROOT/var/lib/app/runs"
if [ ! -e "$BOOTSTATE_ROOT/var/lib/app/fixed" ]; then
  printf '{"id": "bad-rows", "severity": "error", "message": "rows without owner", "resolutions": ["fix-it"], "default": "fix-it"}\\n' > "$BOOTSTATE_ITEMS"
fi
"""
FIX = """#!/bin/sh
echo fix >> "$BOOTSTATE_ROOT/var/lib/app/runs"
touch "$BOOTSTATE_ROOT/var/lib/app/fixed"
"""
BACK = """#!/bin/sh
echo back >> "$BOOTSTATE_ROOT/var/lib/app/runs"
"""
UNFIX = """#!/bin/sh
echo unfix >> "$BOOTSTATE_ROOT/var/lib/app/runs"
rm -f "$BOOTSTATE_ROOT/var/lib/app/fixed"
"""
# Names a resolution its migration does not declare.
UNDECLARED = """#!/bin/sh
printf '{"id": "x", "severity": "warning", "message": "w", "resolutions": ["nuke"]}\\n' > "$BOOTSTATE_ITEMS"
"""


class StepResolutionsTest(AppMachineTest):
    def write_g2(self, probe):
        machine = self.machine
        return machine.write_plan("g2", [{
            "id": "m", "description": "migrate the rows", "policy": "required",
            "steps": [command_step("probe", [probe])],
            "undo": [command_step("back", [machine.script("back", BACK)])],
            "resolutions": [{
                "id": "fix-it", "description": "give the rows an owner",
                "steps": [command_step("go", [machine.script("fix", FIX)])],
                "undo": [command_step("back", [machine.script("unfix", UNFIX)])],
            }],
        }])

    def boot(self, name):
        self.machine.boot_into(name)
        self.machine.reboot()
        return self.machine.boot()

    def item(self, item_id):
        for item in self.machine.status()["items"]:
            if item["id"] == item_id:
                return item
        raise AssertionError("no item %s in status" % item_id)

    def test_a_chosen_resolution_runs_before_the_step_is_retried_and_is_undone_elsewhere(self):
        machine = self.machine
        g2 = self.write_g2(machine.script("probe", PROBE))
        self.assertEqual(self.boot("g2"), 1)
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertIn('reported error "bad-rows"', status["attempt"]["reason"])
        item = self.item("bad-rows")
        self.assertEqual((item["check"], item["state"], item["default"]), ("m/probe", "open", "fix-it"))
        self.assertEqual(item["resolutions"], [{"id": "fix-it", "description": "give the rows an owner"}])

        # The fallback boots g1; its status shows the item with the command that chooses.
        self.assertEqual(self.boot("g1"), 0)
        text = machine.bootstate("status").stdout
        self.assertIn("bad-rows (open, step m/probe): rows without owner", text)
        self.assertIn("fix-it (default): give the rows an owner", text)
        self.assertIn("bootstate choose bad-rows fix-it", text)
        # `preview` of g2 shows what its step reported, with the resolution and the command.
        preview = machine.bootstate("--json", "preview", g2)
        items = {item["id"]: item for item in json.loads(preview.stdout)["items"]}
        self.assertEqual([r["id"] for r in items["bad-rows"]["resolutions"]], ["fix-it"])
        preview = machine.bootstate("preview", g2)
        self.assertIn("bootstate choose --plan %s bad-rows fix-it" % g2, preview.stdout)
        # A resolution the migration does not offer: refused, nothing written.
        before = machine.store_bytes()
        refused = machine.bootstate("choose", "bad-rows", "nuke")
        self.assertEqual(refused.returncode, 2, refused.stdout + refused.stderr)
        self.assertIn('has no resolution "nuke"', refused.stderr)
        self.assertEqual(machine.store_bytes(), before)

        chosen = machine.bootstate("choose", "bad-rows", "fix-it")
        self.assertEqual(chosen.returncode, 0, chosen.stdout + chosen.stderr)
        self.assertIn('runs as migration "m.fix-it"', chosen.stdout)
        self.assertIn('then migration "m" runs again', chosen.stdout)
        item = self.item("bad-rows")
        self.assertEqual((item["state"], item["chosen"]), ("chosen", "fix-it"))
        # --clear withdraws it, and it can be chosen again (the source/id form works too).
        cleared = machine.bootstate("choose", "m/probe/bad-rows", "--clear")
        self.assertEqual(cleared.returncode, 0, cleared.stdout + cleared.stderr)
        self.assertEqual(self.item("bad-rows")["state"], "open")
        again = machine.bootstate("choose", "m/probe/bad-rows", "fix-it")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)

        # The next boot of g2 runs m.fix-it, then m's step again, which now passes.
        self.assertEqual(self.boot("g2"), 0, machine.status())
        self.assertEqual(machine.lines("/var/lib/app/runs"), ["probe", "back", "fix", "probe"])
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(machine.migration("m.fix-it")["state"], "applied")
        self.assertEqual(machine.migration("m")["state"], "applied")
        self.assertEqual(self.item("bad-rows")["state"], "resolved")
        self.assertTrue(os.path.exists(machine.path("/var/lib/app/fixed")))

        # Booting g1 undoes m.fix-it like any stale migration, after m, which ran on top of it
        # (newest first: before, m kept the place of its first run and was undone last).
        self.assertEqual(self.boot("g1"), 0, machine.status())
        self.assertEqual(machine.lines("/var/lib/app/runs"),
                         ["probe", "back", "fix", "probe", "back", "unfix"])
        self.assertEqual(machine.migration("m.fix-it")["state"], "undone")
        self.assertFalse(os.path.exists(machine.path("/var/lib/app/fixed")))

    def test_a_resolution_the_migration_does_not_declare_fails_the_step_naming_it(self):
        machine = self.machine
        self.write_g2(machine.script("undeclared", UNDECLARED))
        self.assertEqual(self.boot("g2"), 1)
        reason = machine.status()["attempt"]["reason"]
        self.assertIn('"nuke" is not a resolution migration "m" declares', reason)

    def test_a_bad_migration_resolution_is_refused_naming_the_json_path(self):
        machine = self.machine
        machine.write_plan("g2", [{
            "id": "m", "policy": "required",
            "steps": [command_step("probe", ["/bin/true"])],
            "resolutions": [{"id": "r", "after": ["m"],
                             "steps": [command_step("go", ["/bin/true"])]}],
        }])
        result = machine.bootstate("--plan", machine.toplevel("g2"), "preview")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn('migrations[0].resolutions[0].after[0]: "m" is the migration itself',
                      result.stderr)


if __name__ == "__main__":
    unittest.main()

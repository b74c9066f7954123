"""`bootstate cancel` through the real binary over several boots of a --root tree (issue 16
item 7): the operator abandons the attempt in progress; what it applied is undone by the next
boot of the last good generation (which cancel arranges to boot next), or at once when the
attempt is a live switch.
"""

import json
import os
import unittest

from harness import Machine, STEP_TOOL, command_step

try:
    import jsonschema
except ImportError:  # pragma: no cover - validate_status says why
    jsonschema = None

SOURCE = os.environ.get("BOOTSTATE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))

LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"


def validate_status(test, status):
    """`status --json` after a cancel against docs/schema (python3-jsonschema)."""
    if jsonschema is None:
        test.fail("python3-jsonschema is not installed (scripts/install-deps.sh test)")
    with open(os.path.join(SOURCE, "docs", "schema", "status.schema.json")) as file:
        jsonschema.validate(status, json.load(file))


class Cancel(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        self.log = self.machine.path("/var/lib/log")
        self.data = self.machine.path("/var/lib/app")
        os.makedirs(self.data)
        with open(self.data + "/db", "w") as file:
            file.write("version 1\n")
        # "base" is applied by gen1's attempt and kept by gen2: a cancel of gen2 leaves it be.
        base = {"id": "base", "policy": "required",
                "steps": [command_step("b", [STEP_TOOL, "append", self.machine.path("/var/lib/base"),
                                             "base"])]}
        self.machine.write_plan("gen1", [base])
        # gen2 converts the data (a backup makes it undoable), then has initrd work after it:
        # the attempt stays in progress, waiting for a reboot, when its first boot ends.
        self.machine.write_plan("gen2", [
            base,
            {"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
             "steps": [command_step("convert", [STEP_TOOL, "write", self.data + "/db",
                                                "version 2\n"])]},
            {"id": "later", "policy": "required", "after": ["app-v2"],
             "steps": [command_step("s", [STEP_TOOL, "append", self.log, "later"],
                                    phase="initrd-pre-mount")]}])
        self.machine.boot_into("gen1")
        self.assertEqual(self.machine.boot(), 0)

    def db(self):
        with open(self.data + "/db") as file:
            return file.read()

    def attempt(self):
        return self.machine.status()["attempt"]

    def boot_counted(self, name):
        """systemd-boot booting NAME+3-0.conf: renamed to +2-1, reported in EFI variables."""
        entries = self.machine.path("/boot/loader/entries")
        for old in os.listdir(entries):
            if old.startswith("nixos-%s+" % name):
                os.unlink(os.path.join(entries, old))
        with open(os.path.join(entries, "nixos-%s+2-1.conf" % name), "w") as file:
            file.write("title %s\nlinux /k\noptions init=/nix/store/%s/init\n" % (name, name))
        self.efi_variable("LoaderEntrySelected", "nixos-%s+3-0.conf" % name)
        self.efi_variable("LoaderBootCountPath", "\\loader\\entries\\nixos-%s+2-1.conf" % name)
        self.machine.boot_into(name)
        self.machine.reboot()

    def efi_variable(self, name, value):
        directory = self.machine.path("/sys/firmware/efi/efivars")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "%s-%s" % (name, LOADER_GUID)), "wb") as file:
            file.write(b"\x07\x00\x00\x00" + (value + "\0").encode("utf-16-le"))

    def test_cancel_after_a_boot_marks_the_entry_bad_and_the_last_good_boot_undoes(self):
        m = self.machine
        self.boot_counted("gen2")
        self.assertEqual(m.boot(), 4)  # initrd work remains: a reboot is needed
        self.assertEqual(self.db(), "version 2\n")
        self.assertEqual(self.attempt()["state"], "in-progress")

        result = m.bootstate("cancel")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("cancelled by the operator", result.stdout)
        self.assertIn("marked bad", result.stdout)
        entries = os.listdir(m.path("/boot/loader/entries"))
        self.assertEqual(len(entries), 1)
        self.assertTrue(entries[0].startswith("nixos-gen2+0"), entries)  # no tries left
        attempt = self.attempt()
        self.assertEqual((attempt["state"], attempt["reason"]),
                         ("abandoned", "cancelled by the operator"))
        again = m.bootstate("cancel")  # the same answer again: nothing more changes
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertEqual(os.listdir(m.path("/boot/loader/entries")), entries)

        # Booted again anyway (picked from the menu): nothing more of the attempt runs.
        m.reboot()
        result = m.run("initrd-pre-mount")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("cancelled by the operator", result.stdout + result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), [])

        # The last good generation boots and undoes what the attempt did.
        m.boot_into("gen1")
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(self.db(), "version 1\n")
        history = m.bootstate("--json", "history")
        self.assertIn("cancelled by the operator", history.stdout)

    def test_cancel_of_a_live_switch_undoes_at_once(self):
        m = self.machine
        m.point_current_system("gen1")
        m.point_current_system("gen2")
        result = m.run_unit()
        self.assertEqual(result.returncode, 4, result.stdout + result.stderr)
        self.assertEqual(self.db(), "version 2\n")

        result = m.bootstate("cancel")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.db(), "version 1\n")
        self.assertIn("cancelled by the operator", result.stdout)
        self.assertIn("nixos-rebuild switch --rollback", result.stdout + result.stderr)
        self.assertEqual(self.attempt()["state"], "abandoned")

        # Cancel again: the same answer, nothing redone or undone twice.
        result = m.bootstate("cancel")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.db(), "version 1\n")
        # The unit restarted (the same switch again) does not redo the cancelled work.
        result = m.run_unit()
        self.assertEqual(self.db(), "version 1\n", result.stdout + result.stderr)
        # Switching back to the booted generation leaves everything as the cancel left it.
        m.point_current_system("gen1")
        self.assertEqual(m.run_unit().returncode, 0)
        self.assertEqual(self.db(), "version 1\n")

    def assert_status_says_cancelled(self, undone_by):
        """`status` after a cancel: no migration of the cancelled attempt reads as work to come
        (no "runnable", "waiting", "pending" next step), each says it was cancelled by the
        operator, and "Next:" says what undoes (or undid) what it applied."""
        m = self.machine
        text = m.bootstate("status")
        self.assertEqual(text.returncode, 0, text.stderr)
        for word in ("runnable", "waiting"):
            self.assertNotIn(word, text.stdout)
        self.assertIn("cancelled by the operator", text.stdout)
        self.assertIn(undone_by, text.stdout.split("Next:")[1])
        self.assertNotIn("run later", text.stdout)
        status = m.status()
        validate_status(self, status)
        readiness = {row["id"]: (row["readiness"], row["detail"]) for row in status["migrations"]}
        self.assertEqual(readiness["later"][0], "cancelled", readiness)
        self.assertIn("will not run", readiness["later"][1])
        self.assertEqual(readiness["app-v2"][0], "cancelled", readiness)
        self.assertIn(undone_by, readiness["app-v2"][1])
        self.assertEqual(readiness["base"], ("applied", ""))  # an earlier attempt's stays
        return text.stdout, status

    def test_status_after_cancel_after_a_boot_says_the_last_good_boot_undoes(self):
        m = self.machine
        self.boot_counted("gen2")
        self.assertEqual(m.boot(), 4)
        self.assertEqual(m.migration("later")["readiness"], "runnable")  # before the cancel
        self.assertEqual(m.bootstate("cancel").returncode, 0)
        text, status = self.assert_status_says_cancelled("booting /nix/store/gen1 undoes")
        self.assertEqual(m.migration("app-v2")["state"], "applied")
        self.assertIn("the next boot starts the last good generation /nix/store/gen1", text)
        # Booted anyway: the same words (the phase refused, nothing ran).
        m.reboot()
        m.run("initrd-pre-mount")
        self.assert_status_says_cancelled("booting /nix/store/gen1 undoes")

    def test_status_after_cancel_of_a_live_switch_says_it_was_undone(self):
        m = self.machine
        m.point_current_system("gen1")
        m.point_current_system("gen2")
        self.assertEqual(m.run_unit().returncode, 4)
        self.assertEqual(m.migration("later")["readiness"], "runnable")  # before the cancel
        self.assertEqual(m.bootstate("cancel").returncode, 0)
        text, status = self.assert_status_says_cancelled("undone by `bootstate cancel`")
        self.assertEqual(m.migration("app-v2")["state"], "undone")
        self.assertIn("nixos-rebuild switch --rollback", text.split("Next:")[1])

    def test_cancel_without_an_attempt_in_progress_is_refused_and_changes_nothing(self):
        m = self.machine
        before = m.store_bytes()
        result = m.bootstate("cancel")  # gen1's attempt is complete
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("only an attempt in progress can be cancelled", result.stderr)
        self.assertEqual(m.store_bytes(), before)
        result = m.bootstate("cancel", "extra")
        self.assertEqual(result.returncode, 2)
        self.assertIn("takes no argument", result.stderr)


if __name__ == "__main__":
    unittest.main()

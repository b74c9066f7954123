"""`status` wording, colours (terminal only, NO_COLOR), --no-pager, and `history --json`."""

import json
import os
import shutil
import pty
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import BOOTSTATE, Machine, command_step  # noqa: E402

LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"


class StatusTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        self.toplevel = self.machine.write_plan("g1", [
            {"id": "app", "policy": "required",
             "steps": [command_step("one", ["/bin/sh", "-c", "echo hi"])]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)

    def efi_variable(self, name, value):
        directory = self.machine.path("/sys/firmware/efi/efivars")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "%s-%s" % (name, LOADER_GUID))
        with open(path, "wb") as file:
            file.write(b"\x07\x00\x00\x00" + (value + "\0").encode("utf-16-le"))

    def entry_file(self, name):
        directory = self.machine.path("/boot/loader/entries")
        for old in os.listdir(directory):
            os.unlink(os.path.join(directory, old))
        with open(os.path.join(directory, name), "w") as file:
            file.write("title g1\nlinux /k\noptions init=%s/init\n" % self.toplevel)

    def counting_line(self):
        result = self.machine.bootstate("status")
        self.assertEqual(result.returncode, 0, result.stderr)
        return [line for line in result.stdout.splitlines() if "Counting:" in line][0]

    def test_a_blessed_entry_reads_the_same_on_every_boot(self):
        # Boot 1: systemd-boot counted "g1+3-0.conf" (renamed to +2-1) and the boot blessed it.
        self.entry_file("nixos-g1.conf")
        self.efi_variable("LoaderEntrySelected", "nixos-g1+3-0.conf")
        self.efi_variable("LoaderBootCountPath", "\\loader\\entries\\nixos-g1+2-1.conf")
        blessed_in_this_boot = self.counting_line()
        self.assertEqual(self.machine.status()["booted"]["entry_state"], "blessed")
        # Boot 2: the entry has no counter now, so systemd-boot sets no LoaderBootCountPath.
        os.unlink(self.machine.path("/sys/firmware/efi/efivars/LoaderBootCountPath-" + LOADER_GUID))
        self.efi_variable("LoaderEntrySelected", "nixos-g1.conf")
        blessed_earlier = self.counting_line()
        self.assertEqual(blessed_in_this_boot, blessed_earlier)
        self.assertEqual(blessed_earlier, "   Counting: blessed: marked good, no counter left")
        self.assertEqual(self.machine.status()["booted"]["entry_state"], "blessed")

    def test_on_trial_and_not_counted(self):
        self.entry_file("nixos-g1+2-1.conf")
        self.efi_variable("LoaderEntrySelected", "nixos-g1+3-0.conf")
        self.efi_variable("LoaderBootCountPath", "\\loader\\entries\\nixos-g1+2-1.conf")
        self.assertEqual(self.counting_line(), "   Counting: on-trial: 2 tries left, 1 done; "
                                               "blessed when this boot completes")
        self.assertEqual(self.machine.status()["booted"]["entry_state"], "on-trial")
        # The harness tree has no loader variables at all before: not counted, and why.
        shutil.rmtree(self.machine.path("/sys"))
        self.assertTrue(self.counting_line().startswith("   Counting: not-counted: "))

    def run_on_terminal(self, *arguments, env=None):
        """Runs bootstate with stdout on a pseudo-terminal; returns what it printed."""
        controller, terminal = pty.openpty()
        environment = dict(os.environ, TERM="xterm")
        environment.pop("NO_COLOR", None)
        environment.update(env or {})
        process = subprocess.Popen([BOOTSTATE, "--root", self.machine.root] + list(arguments),
                                   stdout=terminal, stderr=subprocess.PIPE, env=environment)
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            output += chunk
        os.close(controller)
        self.assertEqual(process.wait(timeout=60), 0)
        return output.decode()

    def test_colours_only_on_a_terminal_and_never_with_no_color(self):
        coloured = self.run_on_terminal("status")
        self.assertIn("\x1b[32m✓\x1b[0m", coloured)
        self.assertIn("\x1b[32mcomplete\x1b[0m", coloured)
        self.assertNotIn("\x1b[", self.run_on_terminal("status", env={"NO_COLOR": "1"}))
        self.assertNotIn("\x1b[", self.run_on_terminal("status", env={"TERM": "dumb"}))
        self.assertIn("\x1b[32m", self.run_on_terminal("status", env={"NO_COLOR": ""}))
        piped = self.machine.bootstate("status")
        self.assertNotIn("\x1b[", piped.stdout)
        # The same words with and without colours.
        self.assertEqual(coloured.replace("\r\n", "\n").replace("\x1b[32m", "")
                         .replace("\x1b[1m", "").replace("\x1b[0m", ""), piped.stdout)

    def test_no_pager_is_accepted(self):
        for argv in (["--no-pager", "status"], ["status", "--no-pager"],
                     ["history", "--no-pager"], ["log", "--no-pager"]):
            result = self.machine.bootstate(*argv)
            self.assertEqual(result.returncode, 0, (argv, result.stderr))

    def test_history_json(self):
        self.machine.write_plan("g2", [
            {"id": "app", "policy": "required",
             "steps": [command_step("one", ["/bin/sh", "-c", "echo hi"])]},
            {"id": "more", "policy": "recommended",
             "steps": [command_step("two", ["/bin/sh", "-c", "exit 5"])]}])
        self.machine.boot_into("g2")
        self.machine.reboot()
        self.machine.boot()
        result = self.machine.bootstate("--json", "history")
        self.assertEqual(result.returncode, 0, result.stderr)
        attempts = json.loads(result.stdout)
        self.assertEqual([a["number"] for a in attempts], [1, 2])
        self.assertEqual(attempts[0]["generation"], self.toplevel)
        self.assertEqual(attempts[0]["state"], "complete")
        for attempt in attempts:
            self.assertEqual(set(attempt), {"number", "generation", "state", "reason", "boots",
                                            "started", "finished"})

    def test_json_of_hundreds_of_migrations_streams_as_one_document(self):
        # status --json goes out in 64 KiB pieces (cli/json_writer.hpp): a document of several
        # pieces must still be one JSON document with every row, ending in one newline.
        count = 300
        app = {"id": "app", "policy": "required",  # setUp's, applied already
               "steps": [command_step("one", ["/bin/sh", "-c", "echo hi"])]}
        self.machine.write_plan("big", [app] + [
            {"id": "m%03d" % index, "policy": "required", "description": "migration %d" % index,
             "steps": [command_step("a", ["/bin/true"]), command_step("b", ["/bin/true"])]}
            for index in range(count)])
        self.machine.boot_into("big")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        result = self.machine.bootstate("--json", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreater(len(result.stdout), 3 * 64 * 1024)
        self.assertTrue(result.stdout.endswith("}\n") and not result.stdout.endswith("\n\n"))
        rows = json.loads(result.stdout)["migrations"]
        in_plan = [row for row in rows if row["in_plan"]]
        self.assertEqual([row["id"] for row in in_plan],
                         ["app"] + ["m%03d" % i for i in range(count)])
        self.assertTrue(all(row["state"] == "applied" for row in in_plan))
        self.assertTrue(all(len(row["steps"]) == 2 for row in in_plan[1:]))

    def test_output_that_cannot_be_written_is_an_error(self):
        # `status > file` on a full disk must not exit 0 with half a document (or none).
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        for argv in (["status"], ["--json", "status"], ["history"], ["--json", "history"],
                     ["preview", self.toplevel]):
            with self.subTest(argv=argv), open("/dev/full", "w") as full:
                result = subprocess.run([BOOTSTATE, "--root", self.machine.root] + argv,
                                        stdout=full, stderr=subprocess.PIPE, text=True)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("writing the output", result.stderr)
                self.assertIn("No space left on device", result.stderr)


if __name__ == "__main__":
    unittest.main()

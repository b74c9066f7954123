"""The state files on the ESP: read-only commands never write (issue 13 item 6), the files are
opened without following links and only when regular (item 12), --root/--esp stay inside the
tree (item 15), and a non-root caller is told it needs root (item 16)."""

import json
import os
import shutil
import stat
import subprocess
import threading
import unittest

from harness import BOOTSTATE, Machine, STEP_TOOL, command_step


def esp_snapshot(machine):
    """Every entry under the ESP with its type, bytes, size, mode and mtime (ns): a read-only
    command must leave all of it exactly as it was."""
    snapshot = {}
    base = machine.path("/boot")
    for directory, directories, files in os.walk(base):
        for name in directories + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            content = None
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as file:
                    content = file.read()
            snapshot[os.path.relpath(full, base)] = (
                stat.S_IFMT(info.st_mode), content, info.st_size, info.st_mode, info.st_mtime_ns)
    top = os.lstat(base)
    snapshot["."] = (top.st_mode, None, top.st_size, top.st_mode, top.st_mtime_ns)
    return snapshot


class StoreFiles(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        m = self.machine
        m.write_plan("gen1", [{"id": "app", "policy": "required", "steps": [
            command_step("a", [STEP_TOOL, "append", m.path("/var/lib/log"), "a"])]},
            {"id": "extra", "policy": "optional", "steps": [
                command_step("x", [STEP_TOOL, "append", m.path("/var/lib/log"), "x"])]}])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        self.slots = m.path("/boot/bootstate")

    def tearDown(self):
        self.machine.cleanup()

    def slot(self, index):
        return os.path.join(self.slots, "state.%d" % index)

    def newest(self):
        sequences = {}
        for index in (0, 1):
            with open(self.slot(index), "rb") as file:
                sequences[index] = int.from_bytes(file.read(20)[12:20], "little")
        return max(sequences, key=sequences.get)

    def corrupt(self, index):
        with open(self.slot(index), "r+b") as file:
            file.seek(40)
            byte = file.read(1)
            file.seek(40)
            file.write(bytes([byte[0] ^ 0xFF]))

    # --- item 6 -----------------------------------------------------------------------------

    def assert_read_only(self, expect_in_output):
        m = self.machine
        before = esp_snapshot(m)
        for arguments in (["status"], ["--json", "status"], ["preview"], ["history"],
                          ["--json", "history"], ["preview", "/nix/store/gen1"]):
            result = m.bootstate(*arguments)
            output = result.stdout + result.stderr
            self.assertIn(result.returncode, (0, 1), output)
            self.assertNotIn("were moved aside", output)
            self.assertNotIn("was ignored", output)
            if arguments[-1] == "status" or arguments == ["preview"]:
                for fragment in expect_in_output:
                    self.assertIn(fragment, output, arguments)
            self.assertEqual(esp_snapshot(m), before, arguments)

    def test_read_only_commands_with_one_corrupt_slot(self):
        for index in (0, 1):
            with self.subTest(slot=index):
                self.machine.boot()  # both slots valid again
                self.machine.reboot()
                self.corrupt(index)
                self.assert_read_only(["state slot %d" % index,
                                       "`bootstate run` will ignore it"])

    def test_read_only_commands_with_both_slots_corrupt(self):
        self.corrupt(0)
        self.corrupt(1)
        self.assert_read_only(["`bootstate run` will move them aside"])
        # (DIR/idle, the idle certificate of issue #17, may be there too: it is no slot.)
        self.assertEqual(sorted(set(os.listdir(self.slots)) - {"idle"}), ["state.0", "state.1"])
        # `run` is the one that moves them aside, and says so.
        result = self.machine.run("initrd-pre-mount")
        self.assertIn("moved aside", result.stdout + result.stderr)
        self.assertIn("state.0.broken", os.listdir(self.slots))

    def test_read_only_commands_with_a_truncated_and_a_missing_slot(self):
        newest = self.newest()
        os.remove(self.slot(1 - newest))
        with open(self.slot(newest), "r+b") as file:
            file.truncate(10)
        self.assert_read_only(["`bootstate run` will move them aside"])

    # --- item 12 ----------------------------------------------------------------------------

    def gen2(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "more", "policy": "required", "steps": [
            command_step("b", [STEP_TOOL, "append", m.path("/var/lib/log"), "b"])]},
            {"id": "extra", "policy": "optional", "steps": [
                command_step("x", [STEP_TOOL, "append", m.path("/var/lib/log"), "x"])]}])
        m.boot_into("gen2")
        m.reboot()

    def run_bounded(self, *arguments):
        """The binary with a short timeout: a FIFO must not hang it."""
        return subprocess.run([BOOTSTATE, "--root", self.machine.root] + list(arguments),
                              capture_output=True, text=True, timeout=20)

    def test_a_slot_that_is_a_symlink_is_never_written_through(self):
        m = self.machine
        self.gen2()
        older = 1 - self.newest()
        outside = os.path.join(m.root + "-outside")
        shutil.copyfile(self.slot(older), outside)
        self.addCleanup(os.remove, outside)
        with open(outside, "rb") as file:
            outside_before = file.read()
        os.remove(self.slot(older))
        os.symlink(outside, self.slot(older))
        for arguments in (["run", "--phase", "post-activation"], ["accept", "extra"],
                          ["status"], ["history"]):
            result = self.run_bounded(*arguments)
            # A read-only command shows the other, valid slot and names the refused one.
            self.assertEqual(result.returncode, 0 if arguments[0] in ("status", "history") else 2,
                             arguments)
            self.assertIn("state.%d is a symbolic link" % older, result.stdout + result.stderr)
        with open(outside, "rb") as file:
            self.assertEqual(file.read(), outside_before)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])

    def test_a_slot_or_the_store_directory_that_is_a_fifo_or_symlink_does_not_hang(self):
        m = self.machine
        self.gen2()
        index = self.newest()
        os.remove(self.slot(index))
        os.mkfifo(self.slot(index), 0o600)
        for arguments in (["run", "--phase", "post-activation"], ["decline", "extra"],
                          ["status"], ["history"]):
            result = self.run_bounded(*arguments)
            self.assertEqual(result.returncode, 0 if arguments[0] in ("status", "history") else 2,
                             arguments)
            self.assertIn("state.%d is not a regular file" % index, result.stdout + result.stderr)
        os.remove(self.slot(index))
        # The directory itself a symlink to a copy elsewhere: refused, not followed.
        elsewhere = m.root + "-store"
        shutil.copytree(self.slots, elsewhere)
        self.addCleanup(shutil.rmtree, elsewhere, True)
        shutil.rmtree(self.slots)
        os.symlink(elsewhere, self.slots)
        result = self.run_bounded("run", "--phase", "post-activation")
        self.assertEqual(result.returncode, 2)
        self.assertIn("bootstate is a symbolic link", result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])

    def test_a_plan_that_is_a_fifo_is_refused_naming_it(self):
        m = self.machine
        plan = m.path("/nix/store/gen1/bootstate/plan.json")
        os.remove(plan)
        os.mkfifo(plan)
        before = m.store_bytes()
        for arguments in (["run", "--phase", "post-activation"], ["preview"], ["accept", "x"]):
            result = self.run_bounded(*arguments)
            self.assertEqual(result.returncode, 2, arguments)
            self.assertIn(plan + ": it is a FIFO, not a regular file", result.stderr)
        self.assertEqual(m.store_bytes(), before)

    def test_new_state_files_are_root_only(self):
        self.assertEqual(stat.S_IMODE(os.lstat(self.slots).st_mode), 0o700)
        for index in (0, 1):
            info = os.lstat(self.slot(index))
            self.assertTrue(stat.S_ISREG(info.st_mode))
            self.assertEqual(stat.S_IMODE(info.st_mode), 0o600)
            self.assertEqual(info.st_uid, os.geteuid())

    # --- item 15 ----------------------------------------------------------------------------

    def test_init_with_dotdot_does_not_reach_outside_the_root(self):
        m = self.machine
        outside = m.root + "-gen"
        self.addCleanup(shutil.rmtree, outside, True)
        os.makedirs(outside + "/bootstate")
        marker = outside + "/ran"
        generation = "/nix/store" + "/.." * 40 + outside
        with open(outside + "/bootstate/plan.json", "w") as file:
            json.dump({"schema": 1, "generation": generation, "migrations": [
                {"id": "evil", "policy": "required", "steps": [
                    command_step("e", [STEP_TOOL, "append", marker, "ran"])]}]}, file)
        with open(m.path("/proc/cmdline"), "w") as file:
            file.write("init=%s/init\n" % generation)
        before = m.store_bytes()
        result = m.run("post-activation")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn("cannot read " + m.root + outside, result.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(m.store_bytes(), before)

    def test_a_relative_esp_counts_from_the_root_not_the_cwd(self):
        m = self.machine
        cwd = m.root + "-cwd"
        self.addCleanup(shutil.rmtree, cwd, True)
        os.makedirs(cwd + "/boot/loader")
        result = subprocess.run([BOOTSTATE, "--root", m.root, "--esp", "boot", "accept",
                                 "extra"], capture_output=True, text=True, cwd=cwd, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertFalse(os.path.exists(cwd + "/boot/bootstate"))
        self.assertEqual(m.migration("extra")["readiness"], "runnable")

    # --- item 16 ----------------------------------------------------------------------------

    def as_nobody(self, *arguments):
        return subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BOOTSTATE,
             "--root", self.machine.root] + list(arguments),
            capture_output=True, text=True, timeout=60)

    def test_a_caller_that_is_not_root_is_told_it_needs_root(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run the binary as nobody")
        m = self.machine
        # The tree is readable by all, as / is; the store (0700) and /run/bootstate are root's.
        os.chmod(m.root, 0o755)
        os.makedirs(m.path("/run/bootstate"), exist_ok=True)
        probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                "--clear-groups", BOOTSTATE, "version"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("nobody cannot execute %s here" % BOOTSTATE)
        before = esp_snapshot(m)
        for command in (["status"], ["history"], ["preview"], ["accept", "extra"],
                        ["decline", "extra"], ["run", "--phase", "post-activation"]):
            result = self.as_nobody(*command)
            self.assertEqual(result.returncode, 2, command)
            self.assertIn("bootstate %s needs root" % command[0], result.stderr)
            self.assertNotIn("Permission denied", result.stderr)
        self.assertEqual(esp_snapshot(m), before)


if __name__ == "__main__":
    unittest.main()

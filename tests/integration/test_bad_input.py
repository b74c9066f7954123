"""Bad input gets a clear error naming the thing, exit 2, and changes nothing."""

import json
import os
import stat
import struct
import shutil
import subprocess
import unittest

from harness import BOOTSTATE, Machine, STEP_TOOL, command_step


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class BadInput(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        m = self.machine
        m.write_plan("gen1", [{"id": "app", "policy": "required", "steps": [
            command_step("a", [STEP_TOOL, "append", m.path("/var/lib/log"), "a"])]}])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        self.before = m.store_bytes()

    def tearDown(self):
        for directory in ("/boot", "/boot/bootstate"):
            if os.path.isdir(self.machine.path(directory)):
                os.chmod(self.machine.path(directory), 0o755)
        self.machine.cleanup()

    def assert_rejected(self, result, *fragments):
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertEqual(self.machine.store_bytes(), self.before)

    def write_plan_text(self, text):
        with open(self.machine.path("/nix/store/gen1/bootstate/plan.json"), "w") as file:
            file.write(text)

    def test_missing_plan(self):
        os.remove(self.machine.path("/nix/store/gen1/bootstate/plan.json"))
        self.assert_rejected(self.machine.run("post-activation"), "plan.json", "No such file")

    def test_malformed_plan(self):
        self.write_plan_text('{"schema":1,\n"generation": }')
        self.assert_rejected(self.machine.run("post-activation"), "plan.json:2:", "not valid JSON")

    def test_invalid_plan_names_the_json_path(self):
        plan = {"schema": 1, "generation": "/nix/store/gen1", "migrations": [
            {"id": "app", "policy": "required", "steps": [
                {"id": "a", "phase": "pre-mount", "kind": "command", "command": ["/bin/true"]}]}]}
        self.write_plan_text(json.dumps(plan))
        self.assert_rejected(self.machine.run("post-activation"),
                             'migrations[0].steps[0].phase: unknown phase "pre-mount"')

    def test_plan_of_another_generation(self):
        self.machine.write_plan("other", [])
        self.assert_rejected(
            self.machine.bootstate("--plan", "/nix/store/other/bootstate/plan.json",
                                   "run", "--phase", "post-activation"),
            "the plan belongs to generation /nix/store/other")

    def test_kernel_command_line_without_a_generation(self):
        # init= must be TOPLEVEL/init (docs/DESIGN.md "Which init= names a generation").
        for init in ("init=/bin/sh", "init=nix/store/gen1/init", "quiet"):
            with open(self.machine.path("/proc/cmdline"), "w") as file:
                file.write(init + "\n")
            self.assert_rejected(self.machine.run("post-activation"),
                                 "/proc/cmdline: no init=TOPLEVEL/init")

    def test_unknown_migration_for_accept(self):
        self.assert_rejected(self.machine.bootstate("accept", "nope"), 'unknown migration "nope"')

    def test_required_migration_cannot_be_declined(self):
        self.assert_rejected(self.machine.bootstate("decline", "app"), "required")

    def test_usage_errors(self):
        self.assert_rejected(self.machine.bootstate("run"), "run needs --phase")
        self.assert_rejected(self.machine.bootstate("run", "--phase", "pre-mount"),
                             'unknown phase "pre-mount"')
        self.assert_rejected(self.machine.bootstate("frobnicate"), 'unknown command "frobnicate"')

    def test_state_written_by_a_newer_format(self):
        # A rolled-back (older) bootstate must refuse a store a newer one wrote, not overwrite it.
        directory = self.machine.path("/boot/bootstate")
        slots = {}
        for name in ("state.0", "state.1"):
            with open(os.path.join(directory, name), "rb") as file:
                slots[name] = file.read()
        newest = max(slots, key=lambda name: struct.unpack_from("<Q", slots[name], 12)[0])
        older = "state.1" if newest == "state.0" else "state.0"
        data = slots[newest]
        self.assertEqual(struct.unpack_from("<I", data, 28)[0], crc32c(data[:28] + data[32:]))
        sequence = struct.unpack_from("<Q", data, 12)[0] + 1
        header = data[:8] + struct.pack("<IQQ", 99, sequence, len(data) - 32)
        with open(os.path.join(directory, older), "wb") as file:
            file.write(header + struct.pack("<I", crc32c(header + data[32:])) + data[32:])
        self.before = self.machine.store_bytes()
        self.assert_rejected(self.machine.run("post-activation"),
                             "state format 99 is newer than this bootstate supports")
        self.assert_rejected(self.machine.bootstate("accept", "app"), "state format 99")

    def test_read_only_esp(self):
        # A new generation with work to commit, on an ESP mounted read-only (a bind mount in a
        # private mount namespace: root would ignore mode bits).
        m = self.machine
        m.write_plan("gen2", [{"id": "more", "policy": "required", "steps": [
            command_step("b", [STEP_TOOL, "append", m.path("/var/lib/log"), "b"])]}])
        m.boot_into("gen2")
        esp = m.path("/boot")
        if os.geteuid() == 0 and shutil.which("unshare"):
            command = ["unshare", "-m", "--", "sh", "-c",
                       'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
                       'exec "$@"', "sh", esp, BOOTSTATE, "--root", m.root,
                       "run", "--phase", "post-activation"]
        else:
            os.chmod(esp + "/bootstate", stat.S_IRUSR | stat.S_IXUSR)
            command = [BOOTSTATE, "--root", m.root, "run", "--phase", "post-activation"]
        result = subprocess.run(command, capture_output=True, text=True)
        self.assert_rejected(result, "Read-only file system" if os.geteuid() == 0 else "denied")
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # nothing ran without a commit


if __name__ == "__main__":
    unittest.main()

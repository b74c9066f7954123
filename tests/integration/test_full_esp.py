"""A full ESP (issue 13, item 13): commits that fit the slots' preallocated size still land on a
full ESP, so a step that ran is recorded done; a commit that needs new blocks fails with the
truth, and exit 2 ("nothing changed") is only used when nothing did.

The ESP is a small loop-mounted ext2 image (the host kernel has no vfat; ext2, like FAT,
allocates blocks at write time), else a size-limited tmpfs in a private mount namespace."""

import ctypes
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from harness import Machine, STEP_TOOL, command_step

CLONE_NEWNS = 0x00020000


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def fill(directory):
    """Writes a filler file until the file system says ENOSPC."""
    chunk = b"\0" * 1024
    with open(os.path.join(directory, "filler"), "ab", buffering=0) as file:
        try:
            while True:
                file.write(chunk)
        except OSError:
            pass
    try:  # the last, partial block too
        with open(os.path.join(directory, "filler2"), "ab", buffering=0) as file:
            while True:
                file.write(b"\0")
    except OSError:
        pass


class FullEsp(unittest.TestCase):
    namespace_error = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("mounting a small ESP needs root")
        # A private mount namespace for this test process and its children: no mount made
        # here can outlive the test or be seen by anything else.
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            raise unittest.SkipTest("unshare(CLONE_NEWNS): errno %d" % ctypes.get_errno())
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)

    def setUp(self):
        self.machine = Machine()
        esp = self.machine.path("/boot")
        self.image = tempfile.mktemp(prefix="bootstate-esp-", suffix=".img")
        mounted = False
        if shutil.which("mkfs.ext2"):
            subprocess.run(["truncate", "-s", "2M", self.image], check=True)
            made = subprocess.run(["mkfs.ext2", "-q", "-F", "-b", "1024", "-m", "0", "-N", "64",
                                   self.image], capture_output=True)
            mounted = made.returncode == 0 and subprocess.run(
                ["mount", "-o", "loop", self.image, esp], capture_output=True).returncode == 0
        if not mounted:
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", esp],
                                     capture_output=True).returncode == 0
        if not mounted:
            self.machine.cleanup()
            self.skipTest("neither a loop-mounted ext2 image nor a tmpfs could be mounted")
        os.makedirs(esp + "/loader/entries", exist_ok=True)
        self.esp = esp
        m = self.machine
        m.write_plan("gen1", [])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()

    def tearDown(self):
        subprocess.run(["umount", "-l", self.esp], capture_output=True)
        if os.path.exists(self.image):
            os.remove(self.image)
        self.machine.cleanup()

    def big_plan(self, steps):
        """gen2: one required migration whose recorded definition makes the state ~6 KB
        bigger (more than a block: an unpadded slot would need new ones)."""
        m = self.machine
        m.write_plan("gen2", [{"id": "big", "policy": "required", "description": "d" * 6000,
                               "steps": steps}])
        m.boot_into("gen2")
        m.reboot()

    def append(self, step_id, text):
        return command_step(step_id, [STEP_TOOL, "append", self.machine.path("/var/lib/log"),
                                      text])

    def test_a_full_esp_still_takes_the_commits_of_a_boot(self):
        m = self.machine
        fill(self.esp)
        self.big_plan([self.append("a", "A"), self.append("b", "B")])
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["A", "B"])
        self.assertEqual(m.migration("big")["state"], "applied")
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["A", "B"])

    def test_a_step_that_fills_the_esp_is_still_recorded_done(self):
        m = self.machine
        script = 'dd if=/dev/zero of="$1/filler" bs=1k 2>/dev/null; exit 0'
        filler = command_step("fill", ["/bin/sh", "-c", script, "sh", self.esp])
        self.big_plan([self.append("a", "A"), filler, self.append("b", "B")])
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["A", "B"])
        self.assertEqual([s["state"] for s in m.migration("big")["steps"]], ["done"] * 3)
        m.reboot()  # the next boot fails nothing that succeeded
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.migration("big")["state"], "applied")

    def test_no_room_for_the_idle_certificate_costs_only_speed(self):
        """The certificate (issue #17) is created on the first settled run; on a full ESP that
        fails. The run still succeeds, says so, and every later boot decides from the full
        parse, the same as with a certificate."""
        m = self.machine
        os.remove(self.esp + "/bootstate/idle")
        fill(self.esp)
        self.big_plan([self.append("a", "A")])
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["A"])
        idle = self.esp + "/bootstate/idle"
        self.assertTrue(not os.path.exists(idle) or os.path.getsize(idle) < 4096)
        for _ in range(2):
            m.reboot()
            for phase in ("initrd-pre-mount", "pre-switch-root", "post-activation"):
                result = m.run(phase)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("the idle certificate was not written", result.stderr)
                self.assertIn("(the ESP is full)", result.stderr)
            self.assertEqual(m.lines("/var/lib/log"), ["A"])
            self.assertEqual(m.migration("big")["state"], "applied")
            self.assertEqual(m.status()["last_good"], m.generation)

    def strip_newest_slot(self):
        """Rewrites the newest slot at its exact frame size, as a bootstate before slot
        preallocation wrote it: its next commit must grow the file."""
        directory = self.esp + "/bootstate"
        slots = {}
        for name in ("state.0", "state.1"):
            with open(os.path.join(directory, name), "rb") as file:
                slots[name] = file.read()
        newest = max(slots, key=lambda name: struct.unpack_from("<Q", slots[name], 12)[0])
        data = slots[newest]
        length = struct.unpack_from("<Q", data, 20)[0]
        payload = data[32:32 + length].rstrip(b" ")
        header = data[:20] + struct.pack("<Q", len(payload))
        with open(os.path.join(directory, newest), "wb") as file:
            file.write(header + struct.pack("<I", crc32c(header + payload)) + payload)

    def test_growth_on_a_full_esp_after_a_commit_exits_1_with_the_truth(self):
        m = self.machine
        self.strip_newest_slot()
        fill(self.esp)
        self.big_plan([self.append("a", "A")])
        # One process: the attempt's start commits (into the padded slot), then recording the
        # step as running needs the stripped slot to grow, on a full ESP.
        result = m.run("post-activation")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("No space left on device", result.stderr)
        self.assertIn("already changed the state", result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), [])  # never ran without its commit
        status = m.status()
        self.assertEqual(status["attempt"]["generation"], m.generation)
        self.assertEqual(m.migration("big")["steps"][0]["state"], "pending")
        # Space again: the same boot's phase completes, the step runs once.
        os.remove(self.esp + "/filler")
        result = m.run("post-activation")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["A"])
        self.assertEqual(m.migration("big")["state"], "applied")


if __name__ == "__main__":
    unittest.main()

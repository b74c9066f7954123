"""Issue 13 through the real binary over several boots: a backup restore keeps what was written
since the backup (item 1), step logs and work directories are not followed through planted
symlinks (item 12), and a daemon a step starts does not outlive the step (item 14)."""

import glob
import hashlib
import os
import time
import unittest

from harness import Machine, STEP_TOOL, command_step


def tree_hash(top):
    """One digest over every name, link target and file content below `top`."""
    digest = hashlib.sha256()
    for directory, directories, files in sorted(os.walk(top)):
        directories.sort()
        for name in sorted(directories + files):
            full = os.path.join(directory, name)
            digest.update(full.encode())
            if os.path.islink(full):
                digest.update(os.readlink(full).encode())
            elif os.path.isfile(full):
                with open(full, "rb") as file:
                    digest.update(file.read())
    return digest.hexdigest()


def process_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as file:
            stat = file.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


class NothingLost(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()

    def tearDown(self):
        self.machine.cleanup()

    def establish(self):
        m = self.machine
        m.write_plan("gen1", [])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()

    def boot_collecting_stderr(self):
        errors = ""
        for phase in ("initrd-pre-mount", "pre-switch-root", "post-activation"):
            result = self.machine.run(phase)
            errors += result.stderr
            self.assertEqual(result.returncode, 0, result.stderr)
        return errors

    def test_restore_keeps_what_the_service_wrote_since_the_backup(self):
        m = self.machine
        data = m.path("/var/lib/app")
        os.makedirs(data)
        with open(data + "/db", "w") as file:
            file.write("version 1\n")
        self.establish()
        m.write_plan("gen2", [{"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                               "steps": [command_step("convert", [STEP_TOOL, "write", data + "/db",
                                                                  "version 2\n"])]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        # gen2's service takes orders.
        with open(data + "/orders.db", "w") as file:
            file.write("order 1\norder 2\n")
        m.reboot()
        m.boot_into("gen1")  # the admin goes back: gen1's plan has no app-v2
        journal = self.boot_collecting_stderr()

        with open(data + "/db") as file:
            self.assertEqual(file.read(), "version 1\n")
        self.assertFalse(os.path.exists(data + "/orders.db"))
        kept = glob.glob(m.path("/var/lib/bootstate/displaced/*/app-v2/var/lib/app/orders.db"))
        self.assertEqual(len(kept), 1, kept)
        with open(kept[0]) as file:
            self.assertEqual(file.read(), "order 1\norder 2\n")
        # The converted db differs from the backup too: it is kept, not destroyed.
        converted = glob.glob(m.path("/var/lib/bootstate/displaced/*/app-v2/var/lib/app/db"))
        self.assertEqual(len(converted), 1, converted)

        migration = m.migration("app-v2")
        self.assertEqual(migration["state"], "undone")
        self.assertIn(kept[0], migration["displaced"])
        self.assertEqual(migration["displaced_total"], 2)
        text = m.bootstate("status")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("displaced 2 item(s)", text.stdout)
        self.assertIn(kept[0], text.stdout)
        self.assertIn("displaced", journal)
        self.assertIn(kept[0], journal)

    def test_preview_says_that_a_restore_displaces_data(self):
        m = self.machine
        os.makedirs(m.path("/var/lib/app"))
        self.establish()
        m.write_plan("gen2", [{"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                               "steps": [command_step("convert", [STEP_TOOL, "write",
                                                                  m.path("/var/lib/app/db"), "2"])]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        m.boot_into("gen1")
        result = m.bootstate("preview")
        self.assertIn("displaced", result.stdout + result.stderr)

    def test_planted_work_directory_symlink_is_not_followed(self):
        m = self.machine
        outside = m.path("/etc/outside")
        os.makedirs(outside)
        with open(outside + "/passwd", "w") as file:
            file.write("root:x:0:0\n")
        before = tree_hash(outside)
        os.makedirs(m.path("/var/lib/bootstate/work"))
        os.symlink(outside, m.path("/var/lib/bootstate/work/mig"))
        m.write_plan("gen2", [{"id": "mig", "policy": "required",
                               "steps": [command_step("s", [STEP_TOOL, "write", "marker", "x"])]}])
        m.boot_into("gen2")
        result = m.run("post-activation")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/var/lib/bootstate/work/mig is a symlink", result.stderr)
        self.assertEqual(tree_hash(outside), before)
        self.assertFalse(os.path.exists(outside + "/s"))

    def test_planted_log_symlink_is_not_followed(self):
        m = self.machine
        outside = m.path("/etc/shadow-like")
        with open(outside, "w") as file:
            file.write("secret\n")
        os.makedirs(m.path("/var/lib/bootstate/logs"))
        m.write_plan("gen2", [{"id": "mig", "policy": "required",
                               "steps": [command_step("s", [STEP_TOOL, "append", "/dev/null",
                                                            "x"])]}])
        m.boot_into("gen2")
        # The attempt of this first boot is number 1.
        os.symlink(outside, m.path("/var/lib/bootstate/logs/1-mig-s.log"))
        m.run("post-activation")
        with open(outside) as file:
            self.assertEqual(file.read(), "secret\n")
        self.assertIn("it is a symlink", m.migration("mig")["steps"][0]["message"])

    def test_a_daemon_started_by_a_step_does_not_outlive_it(self):
        m = self.machine
        pid_file = m.path("/var/lib/daemon.pid")
        m.write_plan("gen2", [{"id": "starts-daemon", "policy": "required",
                               "steps": [command_step("d", [STEP_TOOL, "daemon", pid_file])]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        with open(pid_file) as file:
            pid = int(file.read())
        gone = process_gone(pid)
        if not gone:
            os.kill(pid, 9)
        self.assertTrue(gone, "the step's daemon %d outlived the step and bootstate" % pid)
        self.assertEqual(m.migration("starts-daemon")["state"], "applied")


if __name__ == "__main__":
    unittest.main()

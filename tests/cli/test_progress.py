"""Progress of a running step (issue #16 item 4) on the host: STATUS= through a real
sd_notify socket, Plymouth's display-message through a stand-in `plymouth` client on PATH, and
stderr. The console of a real boot is the VM tier's to show (not run here)."""

import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Machine, command_step  # noqa: E402


class NotifySocket:
    """A unix datagram socket like systemd's notify socket; collects STATUS= texts."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)
        self.socket.settimeout(0.2)
        self.statuses = []
        self.stopped = False
        self.thread = threading.Thread(target=self.collect)
        self.thread.start()

    def collect(self):
        while not self.stopped:
            try:
                data = self.socket.recv(65536).decode()
            except socket.timeout:
                continue
            for line in data.splitlines():
                if line.startswith("STATUS="):
                    self.statuses.append(line[len("STATUS="):])

    def close(self):
        self.stopped = True
        self.thread.join()
        self.socket.close()


class ProgressTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        self.directory = tempfile.mkdtemp(prefix="bootstate-progress-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        # A stand-in Plymouth client that records what it was asked to show.
        self.shown = os.path.join(self.directory, "plymouth.log")
        bin_directory = os.path.join(self.directory, "bin")
        os.makedirs(bin_directory)
        client = os.path.join(bin_directory, "plymouth")
        with open(client, "w") as file:
            file.write('#!/bin/sh\nprintf "%%s|%%s\\n" "$1" "$2" >> %s\n' % self.shown)
        os.chmod(client, stat.S_IRWXU)
        self.path = bin_directory + ":" + os.environ["PATH"]

    def run_phase(self, script, plymouth_running=True, unit=False, migrations=None):
        self.machine.write_plan("g1", migrations or [{
            "id": "slow", "policy": "recommended", "steps": [
                command_step("work", ["/bin/sh", "-c", script])]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            self.assertEqual(self.machine.run(phase).returncode, 0)
        if plymouth_running:
            os.makedirs(self.machine.path("/run/plymouth"), exist_ok=True)
            with open(self.machine.path("/run/plymouth/pid"), "w") as file:
                file.write("1\n")
        notify = NotifySocket(self.directory)
        try:
            env = {"NOTIFY_SOCKET": notify.path, "BOOTSTATE_TEST_HEARTBEAT_MS": "150",
                   "PATH": self.path}
            if unit:
                env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"  # as systemd sets it
            result = self.machine.run("post-activation", env=env)
        finally:
            notify.close()
        return result, notify.statuses

    def shown_on_plymouth(self):
        if not os.path.exists(self.shown):
            return []
        with open(self.shown) as file:
            return file.read().splitlines()

    def test_start_heartbeat_with_percentage_and_end(self):
        result, statuses = self.run_phase(
            'echo 10 > "$BOOTSTATE_PROGRESS"; sleep 0.6; '
            'echo "60 copying tables" > "$BOOTSTATE_PROGRESS"; sleep 0.6')
        self.assertEqual(result.returncode, 0, result.stderr)
        label = 'migration "slow" step "work"'
        self.assertIn(label + ": started", statuses)
        beats = [s for s in statuses if s.startswith(label + ": running for ")]
        self.assertTrue(any(s.endswith(", 10 %") for s in beats), statuses)
        self.assertTrue(any(s.endswith(", 60 %, copying tables") for s in beats), statuses)
        self.assertRegex(statuses[-1], r'^migration "slow" step "work": done after \d+ s$')
        self.assertLess(statuses.index(label + ": started"), statuses.index(beats[0]))
        # The same lines on Plymouth's message line, and on stderr.
        shown = self.shown_on_plymouth()
        self.assertIn("display-message|--text=bootstate: " + label + ": started", shown)
        self.assertTrue(any(line.endswith(", 60 %, copying tables") for line in shown), shown)
        self.assertTrue(shown[-1].startswith("display-message|--text=bootstate: " + label +
                                             ": done after "), shown)
        self.assertIn("bootstate: " + label + ": started", result.stderr)

    def test_two_steps_at_once_each_have_their_own_lines(self):
        # --jobs (issue #15 item 4): the second start used to take over the one heartbeat, and
        # the first step's end was reported under the second one's name.
        def slow(migration, percent, seconds):
            return {"id": migration, "policy": "recommended", "steps": [command_step(
                "work", ["/bin/sh", "-c", 'echo %d > "$BOOTSTATE_PROGRESS"; sleep %s'
                         % (percent, seconds)])]}

        result, statuses = self.run_phase(
            None, plymouth_running=False,
            migrations=[slow("first", 10, "0.6"), slow("second", 20, "1.2")])
        self.assertEqual(result.returncode, 0, result.stderr)
        for migration, percent in (("first", 10), ("second", 20)):
            label = 'migration "%s" step "work"' % migration
            self.assertIn(label + ": started", statuses)
            beats = [s for s in statuses if s.startswith(label + ": running for ")]
            self.assertTrue(any(s.endswith(", %d %%" % percent) for s in beats), statuses)
            done = [s for s in statuses if s.startswith(label + ": done after ")]
            self.assertEqual(len(done), 1, statuses)
        # Both ran at once: the second started before the first ended.
        self.assertLess(statuses.index('migration "second" step "work": started'),
                        [i for i, s in enumerate(statuses)
                         if s.startswith('migration "first" step "work": done')][0])

    def test_without_a_percentage_and_a_failure(self):
        result, statuses = self.run_phase("sleep 0.5; exit 3", plymouth_running=False)
        self.assertEqual(result.returncode, 0, result.stderr)  # recommended: the boot goes on
        beats = [s for s in statuses if ": running for " in s]
        self.assertTrue(beats, statuses)
        self.assertTrue(all("%" not in s for s in beats), beats)
        self.assertRegex(statuses[-1], r'step "work": failed after \d+ s$')
        self.assertEqual(self.shown_on_plymouth(), [])  # Plymouth is not running

    def test_a_stale_percentage_is_not_shown(self):
        # A percentage left by an earlier run in the work directory is removed at the start.
        work = self.machine.path("/var/lib/bootstate/work/slow/work")
        os.makedirs(work)
        with open(os.path.join(work, "progress"), "w") as file:
            file.write("99\n")
        result, statuses = self.run_phase("sleep 0.5")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertFalse([s for s in statuses if "99 %" in s], statuses)


    def console(self):
        path = self.machine.path("/dev/console")
        if not os.path.exists(path):
            return []
        with open(path) as file:
            return file.read().splitlines()

    def test_run_by_a_unit_without_plymouth_the_console_shows_the_progress(self):
        # /dev/console of the --root tree is a file here; in a boot it is the serial or VGA
        # console (tests/vm).
        os.makedirs(self.machine.path("/dev"))
        open(self.machine.path("/dev/console"), "w").close()
        result, _ = self.run_phase('echo "30 loading" > "$BOOTSTATE_PROGRESS"; sleep 0.6',
                                   plymouth_running=False, unit=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        console = self.console()
        label = 'bootstate: migration "slow" step "work"'
        self.assertEqual(console[0], label + ": started")
        self.assertTrue(any(line.endswith(", 30 %, loading") for line in console), console)
        self.assertRegex(console[-1], '^' + label + r': done after \d+ s$')

    def test_not_on_the_console_while_plymouth_runs(self):
        os.makedirs(self.machine.path("/dev"))
        open(self.machine.path("/dev/console"), "w").close()
        result, _ = self.run_phase("sleep 0.3", plymouth_running=True, unit=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.console(), [])  # Plymouth owns the console while it runs
        self.assertTrue(self.shown_on_plymouth())

    def test_not_on_the_console_outside_a_unit(self):
        os.makedirs(self.machine.path("/dev"))
        open(self.machine.path("/dev/console"), "w").close()
        result, _ = self.run_phase("sleep 0.3", plymouth_running=False, unit=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.console(), [])  # a person at a shell sees stderr instead


if __name__ == "__main__":
    unittest.main()

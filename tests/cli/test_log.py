"""`bootstate log`: a step's output from its bounded log, through the real binary."""

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import BOOTSTATE, Machine, command_step  # noqa: E402


def script_step(step_id, script, phase="post-activation", **extra):
    """A step that runs a small script (the step's own program, not bootstate's)."""
    return command_step(step_id, ["/bin/sh", "-c", script], phase=phase, **extra)


class LogTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)

    def boot_plan(self, name, migrations):
        self.machine.write_plan(name, migrations)
        self.machine.boot_into(name)
        self.machine.reboot()
        return self.machine.boot()

    def log(self, *arguments):
        return self.machine.bootstate("log", *arguments)

    def test_failed_step_first_then_the_others(self):
        code = self.boot_plan("g1", [
            {"id": "app", "policy": "recommended", "steps": [
                script_step("prepare", "echo preparing the data; echo second line")]},
            {"id": "db", "policy": "recommended", "after": ["app"], "steps": [
                script_step("convert", "echo converting; echo 'no space left' >&2; exit 3")]}])
        self.assertEqual(code, 0)
        result = self.log()
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout
        self.assertIn("db/convert · attempt 1 · post-activation · failed (exit status 3)", out)
        self.assertIn("converting\nno space left\n", out)
        self.assertIn("app/prepare · attempt 1 · post-activation · done", out)
        self.assertIn("preparing the data\nsecond line\n", out)
        self.assertLess(out.index("db/convert"), out.index("app/prepare"))
        self.assertIn("log: %s/var/lib/bootstate/logs/1-db-convert.log" % self.machine.root, out)

    def test_one_step_and_one_migration(self):
        self.boot_plan("g1", [{"id": "app", "policy": "required", "steps": [
            script_step("one", "echo first"), script_step("two", "echo second")]}])
        only_two = self.log("app/two")
        self.assertEqual(only_two.returncode, 0, only_two.stderr)
        self.assertIn("second", only_two.stdout)
        self.assertNotIn("first", only_two.stdout)
        both = self.log("app")
        self.assertIn("first", both.stdout)
        self.assertIn("second", both.stdout)

    def test_attempt_selects_the_log_of_an_earlier_attempt(self):
        app = {"id": "app", "policy": "required", "steps": [
            script_step("s", "echo run in attempt $BOOTSTATE_ATTEMPT")]}
        self.assertEqual(self.boot_plan("g1", [app]), 0)
        more = {"id": "more", "policy": "required", "steps": [
            script_step("t", "echo more in attempt $BOOTSTATE_ATTEMPT")]}
        self.assertEqual(self.boot_plan("g2", [app, more]), 0)
        current = self.log()
        self.assertIn("more/t · attempt 2", current.stdout, current.stderr)
        self.assertIn("more in attempt 2", current.stdout)
        self.assertNotIn("app/s", current.stdout)
        first = self.log("--attempt", "1")
        self.assertIn("app/s · attempt 1", first.stdout, first.stderr)
        self.assertIn("run in attempt 1", first.stdout)
        self.assertNotIn("more/t", first.stdout)
        # A step that did not run in the current attempt: its newest log.
        newest = self.log("app/s")
        self.assertIn("run in attempt 1", newest.stdout, newest.stderr)
        none = self.log("app/s", "--attempt", "2")
        self.assertEqual(none.returncode, 2)
        self.assertIn('has no step "s" that ran in attempt 2', none.stderr)

    def test_after_a_fallback_the_failure_is_in_its_own_attempt(self):
        # Attempt 2 (g2) fails; booting g1 again (attempt 3) undoes it. The failed step's record
        # is older than attempt 3: it must not be listed as a step of attempt 3.
        self.assertEqual(self.boot_plan("g1", []), 0)
        broken = {"id": "broken", "policy": "required",
                  "steps": [script_step("boom", "echo it broke; exit 4")],
                  "undo": [script_step("unboom", "echo undoing")]}
        self.assertEqual(self.boot_plan("g2", [broken]), 1)
        self.machine.boot_into("g1")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        current = self.log()
        self.assertEqual(current.returncode, 0, current.stderr)
        self.assertIn("broken/unboom (undo) · attempt 3", current.stdout)
        self.assertIn("undoing", current.stdout)
        self.assertNotIn("broken/boom ", current.stdout)
        failed = self.log("--attempt", "2")
        self.assertIn("broken/boom · attempt 2 · post-activation · failed (exit status 4)",
                      failed.stdout)
        self.assertIn("it broke", failed.stdout)

    def test_initrd_pre_mount_step_points_to_the_journal(self):
        # Its log is on tmpfs (/run/bootstate), gone after the boot: the journal has it.
        self.boot_plan("g1", [{"id": "disk", "policy": "required", "steps": [
            script_step("grow", "echo growing", phase="initrd-pre-mount")]}])
        shutil.rmtree(self.machine.path("/run/bootstate"))
        result = self.log("disk/grow")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("journalctl --no-pager --output=cat --identifier=bootstate-disk-grow --boot=",
                      result.stdout)

    @unittest.skipIf(os.path.exists("/var/lib/bootstate/logs") or os.path.exists("/run/bootstate"),
                     "this host has bootstate logs of its own")
    def test_without_root_the_journal_is_read_with_journalctl(self):
        # Not under --root (the journal is the host's): `log` runs journalctl itself. The
        # state comes from the tree's ESP (--esp), the logs from this host's /var/lib/bootstate,
        # which has none; a stand-in journalctl on PATH shows the arguments it got.
        self.boot_plan("g1", [{"id": "disk", "policy": "required", "steps": [
            script_step("grow", "echo growing", phase="initrd-pre-mount")]}])
        bin_directory = self.machine.path("/fake-bin")
        os.makedirs(bin_directory)
        with open(bin_directory + "/journalctl", "w") as file:
            file.write('#!/bin/sh\necho "journalctl $*"\necho growing\n')
        os.chmod(bin_directory + "/journalctl", 0o755)
        environment = dict(os.environ, PATH=bin_directory + ":" + os.environ["PATH"])
        result = subprocess.run([BOOTSTATE, "--esp", self.machine.path("/boot"), "log", "disk/grow"],
                                capture_output=True, text=True, env=environment, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        step = self.machine.migration("disk")["steps"][0]
        self.assertRegex(result.stdout, r"journalctl --no-pager --output=cat "
                                        r"--identifier=bootstate-disk-grow --boot=[0-9a-f-]{36}\n"
                                        r"growing\n")
        self.assertNotIn("no log file", result.stdout)
        self.assertEqual(step["state"], "done")

    def test_unknown_names_exit_2(self):
        self.boot_plan("g1", [{"id": "app", "policy": "required", "steps": [
            script_step("one", "echo first")]}])
        for arguments, fragment in ((["nope"], 'migration "nope" has not run'),
                                    (["app/nope"], 'has no step "nope"'),
                                    (["--attempt", "7"], "--attempt 7: there is no such attempt"),
                                    (["--attempt", "x"], '"x" is not an attempt number')):
            result = self.log(*arguments)
            self.assertEqual(result.returncode, 2, arguments)
            self.assertIn(fragment, result.stderr)

    def test_follow_prints_a_running_step_until_it_ends(self):
        self.machine.write_plan("g1", [{"id": "slow", "policy": "required", "steps": [
            script_step("work", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done")]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            self.assertEqual(self.machine.run(phase).returncode, 0)
        run = subprocess.Popen([BOOTSTATE, "--root", self.machine.root, "run", "--phase",
                                "post-activation"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        # Wait until the step is recorded running, then follow it.
        deadline = time.time() + 20
        while time.time() < deadline:
            steps = self.machine.migration("slow")["steps"]
            if steps[0]["state"] == "running":
                break
            time.sleep(0.05)
        self.assertEqual(steps[0]["state"], "running")
        follow = self.log("-f", "slow/work")
        run.communicate(timeout=60)
        self.assertEqual(follow.returncode, 0, follow.stderr)
        self.assertIn("tick 1\n", follow.stdout)
        self.assertIn("tick 6\n", follow.stdout)
        self.assertIn("-- slow/work is done", follow.stdout)
        self.assertEqual(run.returncode, 0)

    def start_slow_step(self, script):
        """Boots g1 up to post-activation and starts that phase, whose one step runs `script`;
        returns the run once the state shows the step running."""
        self.machine.write_plan("g1", [{"id": "slow", "policy": "required", "steps": [
            script_step("work", script)]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            self.assertEqual(self.machine.run(phase).returncode, 0)
        run = subprocess.Popen([BOOTSTATE, "--root", self.machine.root, "run", "--phase",
                                "post-activation"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: run.poll() is None and os.killpg(run.pid, signal.SIGKILL))
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.machine.migration("slow")["steps"][0]["state"] == "running":
                return run
            time.sleep(0.05)
        self.fail("the step was never recorded running")

    def follow(self, step, timeout=20):
        return subprocess.run([BOOTSTATE, "--root", self.machine.root, "log", "-f", step],
                              capture_output=True, text=True, timeout=timeout)

    def test_follow_ends_when_the_run_was_power_cut(self):
        # The state keeps the step `running` after a power cut: nothing will ever end it in
        # that state, so -f polled it forever. Found by attack; it hung before the fix.
        run = self.start_slow_step("echo started; sleep 2; echo never")
        log = self.machine.path("/var/lib/bootstate/logs/1-slow-work.log")
        deadline = time.time() + 20
        while time.time() < deadline and not (os.path.exists(log) and os.path.getsize(log)):
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)  # the run and its step, as a power cut would
        run.wait(timeout=20)
        self.assertEqual(self.machine.migration("slow")["steps"][0]["state"], "running")
        follow = self.follow("slow/work")
        self.assertEqual(follow.returncode, 0, follow.stderr)
        self.assertIn("started\n", follow.stdout)
        self.assertIn("-- slow/work was interrupted", follow.stdout)
        # The same after the reboot that follows a power cut (a new boot id; the lock file of
        # the dead run is still there under --root).
        self.machine.reboot()
        self.assertIn("-- slow/work was interrupted", self.follow("slow/work").stdout)

    def test_a_symlinked_log_is_not_followed(self):
        # The logs directory is root's and bootstate writes regular files there: a link there
        # is not bootstate's, and `log` printed whatever it pointed at. Failed before the fix.
        self.boot_plan("g1", [{"id": "app", "policy": "required", "steps": [
            script_step("one", "echo first")]}])
        secret = self.machine.path("/etc/secret")
        with open(secret, "w") as file:
            file.write("root's secret\n")
        log = self.machine.path("/var/lib/bootstate/logs/1-app-one.log")
        os.unlink(log)
        os.symlink(secret, log)
        result = self.log("app/one")
        self.assertNotIn("root's secret", result.stdout)
        self.assertIn("is a symbolic link: not followed", result.stdout)

    def test_a_huge_log_is_printed_without_reading_it_whole(self):
        # A log bootstate did not bound (another tool's, an older version's) must not exhaust
        # memory: 256 MiB printed under a 192 MiB address-space limit. Failed before the fix
        # (the whole file was read into one string).
        self.boot_plan("g1", [{"id": "app", "policy": "required", "steps": [
            script_step("one", "echo first")]}])
        size = 256 << 20
        with open(self.machine.path("/var/lib/bootstate/logs/1-app-one.log"), "r+b") as file:
            file.truncate(size)  # sparse: no disk used

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (192 << 20, 192 << 20))

        with subprocess.Popen([BOOTSTATE, "--root", self.machine.root, "log", "app/one"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=limit) as reader:
            printed = 0
            while True:
                chunk = reader.stdout.read(1 << 20)
                if not chunk:
                    break
                printed += len(chunk)
            stderr = reader.stderr.read()
            reader.wait(timeout=60)
        self.assertEqual(reader.returncode, 0, stderr)
        self.assertGreaterEqual(printed, size)

    def test_no_attempt_yet(self):
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        os.makedirs(self.machine.path("/boot/bootstate"), exist_ok=True)
        result = self.log()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("No attempt yet", result.stdout)


if __name__ == "__main__":
    unittest.main()

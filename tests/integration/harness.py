"""A machine as a directory tree for driving the real `bootstate` binary with --root.

The tree has what bootstate reads: /proc/cmdline (init= names the booted generation),
/proc/sys/kernel/random/boot_id (new for every boot), an ESP at /boot, and one toplevel per
generation under /nix/store holding bootstate/plan.json. No EFI variables: boot counting is
"impossible" here; the boot-loader side is covered by tests/scenarios with the simulator.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

BOOTSTATE = os.environ.get("BOOTSTATE", "bootstate")
STEP_TOOL = os.environ.get("STEP_TOOL", "bootstate-step-tool")
PHASES = ("initrd-pre-mount", "pre-switch-root", "post-activation")


def command_step(step_id, argv, phase="post-activation", **extra):
    step = {"id": step_id, "phase": phase, "kind": "command", "command": argv}
    step.update(extra)
    return step


class Machine:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="bootstate-it-")
        for directory in ("proc/sys/kernel/random", "boot/loader/entries", "var/lib", "etc"):
            os.makedirs(os.path.join(self.root, directory), exist_ok=True)
        self.generation = None
        self.reboot()

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def path(self, absolute):
        return self.root + absolute

    def toplevel(self, name):
        return "/nix/store/" + name

    def write_plan(self, name, migrations, checks=None):
        """Writes generation `name`'s plan and returns its toplevel path."""
        toplevel = self.toplevel(name)
        os.makedirs(self.path(toplevel + "/bootstate"), exist_ok=True)
        plan = {"schema": 1, "generation": toplevel, "migrations": migrations}
        if checks is not None:
            plan["checks"] = checks
        with open(self.path(toplevel + "/bootstate/plan.json"), "w") as file:
            json.dump(plan, file)
        return toplevel

    def boot_into(self, name):
        self.generation = self.toplevel(name)
        with open(self.path("/proc/cmdline"), "w") as file:
            file.write("init=%s/init quiet\n" % self.generation)

    def reboot(self):
        with open(self.path("/proc/sys/kernel/random/boot_id"), "w") as file:
            file.write(str(uuid.uuid4()) + "\n")

    def bootstate(self, *arguments, env=None):
        environment = dict(os.environ)
        environment.pop("BOOTSTATE_TEST_CRASH_AT", None)
        environment.update(env or {})
        return subprocess.run(
            [BOOTSTATE, "--root", self.root] + list(arguments),
            capture_output=True, text=True, env=environment, timeout=120)

    def run(self, phase, env=None):
        return self.bootstate("run", "--phase", phase, env=env)

    def boot(self):
        """Runs the three phases while they exit 0; returns the last exit status."""
        for phase in PHASES:
            result = self.run(phase)
            if result.returncode != 0:
                return result.returncode
        return 0

    def point_current_system(self, name):
        """What switch-to-configuration does first: /run/current-system → generation `name`."""
        link = self.path("/run/current-system")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(self.toplevel(name), link)

    def run_unit(self, env=None):
        """What switch-to-configuration's restart of the post-activation unit runs: the module's
        ExecStart (tests/integration/unit_argv.py)."""
        import unit_argv
        environment = dict(os.environ)
        environment.pop("BOOTSTATE_TEST_CRASH_AT", None)
        environment.update(env or {})
        return subprocess.run(unit_argv.module_argv("post-activation", BOOTSTATE, self.root),
                              capture_output=True, text=True, env=environment, timeout=120)

    def status(self):
        result = self.bootstate("--json", "status")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def migration(self, migration_id):
        for migration in self.status()["migrations"]:
            if migration["id"] == migration_id:
                return migration
        raise AssertionError("no migration %s in status" % migration_id)

    def store_bytes(self):
        """The raw state slots, to check that nothing was written."""
        contents = {}
        directory = self.path("/boot/bootstate")
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                with open(os.path.join(directory, name), "rb") as file:
                    contents[name] = file.read()
        return contents

    def tree_snapshot(self, relative):
        """Every file below `relative` with its content, for before/after comparisons."""
        snapshot = {}
        base = self.path(relative)
        for directory, _, files in os.walk(base):
            for name in files:
                full = os.path.join(directory, name)
                with open(full, "rb") as file:
                    snapshot[os.path.relpath(full, base)] = file.read()
        return snapshot

    def script(self, name, text):
        """Writes an executable /scripts/NAME in the tree (a step or check run by its #! line,
        never through a shell by bootstate) and returns its path."""
        path = self.path("/scripts/" + name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write(text)
        os.chmod(path, 0o700)
        return path

    def lines(self, absolute):
        try:
            with open(self.path(absolute)) as file:
                return file.read().splitlines()
        except FileNotFoundError:
            return []


class AppMachineTest(unittest.TestCase):
    """A machine booted once into an empty plan of generation g1, with /var/lib/app for the
    data its steps touch: where the step-item tests start."""

    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        os.makedirs(self.machine.path("/var/lib/app"))
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        self.assertEqual(self.machine.boot(), 0)

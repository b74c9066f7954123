"""A live switch (`nixos-rebuild switch|test`) through the real binary and a --root tree
(docs/DESIGN.md "A live switch", issue 14 item 1).

`switch-to-configuration` repoints /run/current-system at the new toplevel and restarts the
post-activation unit, which runs `bootstate run --phase post-activation --plan
/run/current-system/bootstate/plan.json` while init= on /proc/cmdline still names the booted
generation. `Machine.point_current_system` does the first half; `Machine.run_unit` the second.
"""

import json
import os
import re
import subprocess
import unittest

import unit_argv
from harness import BOOTSTATE, Machine, STEP_TOOL, command_step


class Switch(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.log = self.machine.path("/var/lib/log")
        self.data = self.machine.path("/var/lib/app")
        os.makedirs(self.data)
        with open(self.data + "/db", "w") as file:
            file.write("version 1\n")
        # A counted boot entry per generation, as the systemd-boot builder writes them: a live
        # switch must never rename one (no boot counting in a switch).
        for name in ("gen1", "gen2"):
            with open(self.machine.path("/boot/loader/entries/nixos-%s+3-0.conf" % name),
                      "w") as file:
                file.write("title %s\nlinux /k\noptions init=/nix/store/%s/init\n" % (name, name))
        self.machine.write_plan("gen1", [])
        self.machine.boot_into("gen1")
        self.assertEqual(self.machine.boot(), 0)
        self.machine.point_current_system("gen1")  # what stage 2 of the booted generation sets

    def tearDown(self):
        self.machine.cleanup()

    def run_argv(self, argv):
        environment = dict(os.environ)
        environment.pop("BOOTSTATE_TEST_CRASH_AT", None)
        return subprocess.run(argv, capture_output=True, text=True, env=environment, timeout=120)

    def append(self, step_id, **extra):
        return command_step(step_id, [STEP_TOOL, "append", self.log, step_id], **extra)

    def write_db(self, step_id, text):
        return command_step(step_id, [STEP_TOOL, "write", self.data + "/db", text])

    def db(self):
        with open(self.data + "/db") as file:
            return file.read()

    def entries(self):
        return sorted(os.listdir(self.machine.path("/boot/loader/entries")))

    def test_a_switch_applies_post_activation_work_without_touching_the_boot_entries(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                               "steps": [self.write_db("convert", "version 2\n")]}])
        entries = self.entries()
        self.machine.point_current_system("gen2")
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.db(), "version 2\n")
        self.assertEqual(self.entries(), entries)
        status = m.status()
        self.assertEqual(status["booted"]["generation"], "/nix/store/gen1")
        self.assertEqual(status["current"]["generation"], "/nix/store/gen2")
        self.assertEqual(status["attempt"]["generation"], "/nix/store/gen2")
        self.assertEqual(status["attempt"]["state"], "complete")
        # Not proven to boot: the fallback stays the booted generation until gen2 boots.
        self.assertEqual(status["last_good"], "/nix/store/gen1")
        self.assertEqual(m.migration("app-v2")["state"], "applied")
        text = m.bootstate("status").stdout
        self.assertIn("Current: /nix/store/gen2", text)

    def test_the_installed_unit_without_plan_option_reads_the_current_systems_plan(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "a", "policy": "required", "steps": [self.append("a")]}])
        self.machine.point_current_system("gen2")
        result = self.run_argv(unit_argv.unit_file_argv("post-activation", BOOTSTATE, m.root))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])

    def test_a_current_system_link_of_any_length_is_read_whole(self):
        """Machine::current_system reads the link into 256 bytes first (on an idle boot every
        page of heap touched is a page fault) and again into PATH_MAX when those were filled:
        targets of 255, 256 (the first read filled exactly) and 300 bytes each name their
        generation."""
        m = self.machine
        link = m.path("/run/current-system")
        migrations = []  # each generation keeps the earlier ones: none is stale
        for length in (255, 256, 300):
            name = "gen-%d-" % length
            name += "x" * (200 - len(name))
            migrations.append({"id": "a-%d" % length, "policy": "required",
                               "steps": [self.append("a-%d" % length)]})
            toplevel = m.write_plan(name, migrations)
            # The same toplevel spelled `length` bytes long: bootstate normalizes "./" and "//".
            padding = length - len(toplevel)
            target = "/nix/" + "./" * (padding // 2) + "/" * (padding % 2) + toplevel[5:]
            self.assertEqual(len(target), length)
            os.unlink(link)
            os.symlink(target, link)
            result = self.machine.run_unit()
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(m.status()["current"]["generation"], toplevel, length)
        self.assertEqual(m.lines("/var/lib/log"), ["a-255", "a-256", "a-300"])

    def test_the_first_boot_of_a_switched_generation_blesses_it(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "a", "policy": "required", "steps": [self.append("a")]}])
        self.machine.point_current_system("gen2")
        self.assertEqual(self.machine.run_unit().returncode, 0)
        m.reboot()
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # not run twice
        self.assertEqual(m.status()["last_good"], "/nix/store/gen2")

    def test_initrd_work_exits_4_and_runs_at_the_next_boot(self):
        m = self.machine
        m.write_plan("gen2", [
            {"id": "early", "policy": "required",
             "steps": [self.append("early", phase="initrd-pre-mount")]},
            {"id": "late", "policy": "required", "steps": [self.append("late")]}])
        entries = self.entries()
        self.machine.point_current_system("gen2")
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assertIn("reboot", result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["late"])  # its post-activation work ran
        self.assertEqual(self.entries(), entries)
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "in-progress")
        # A restart of the unit in the same boot changes nothing and still says 4.
        before = m.store_bytes()
        self.assertEqual(self.machine.run_unit().returncode, 4)
        self.assertEqual(m.store_bytes(), before)
        m.reboot()
        m.boot_into("gen2")
        self.machine.point_current_system("gen2")
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["late", "early"])
        self.assertEqual(m.status()["attempt"]["state"], "complete")
        self.assertEqual(m.status()["last_good"], "/nix/store/gen2")

    def test_a_failed_switch_migration_is_undone_and_exits_1(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                               "steps": [self.write_db("convert", "version 2\n"),
                                         command_step("verify", [STEP_TOOL, "fail", "3"])]}])
        entries = self.entries()
        self.machine.point_current_system("gen2")
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(self.db(), "version 1\n")  # the backup was restored
        self.assertEqual(self.entries(), entries)
        self.assertIn("nixos-rebuild switch --rollback", result.stderr)
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertEqual(m.migration("app-v2")["state"], "undone")
        self.assertTrue(any("nixos-rebuild switch --rollback" in line for line in status["next"]),
                        status["next"])
        # Restarted in the same boot: still failed, nothing runs again.
        self.assertEqual(self.machine.run_unit().returncode, 1)
        self.assertEqual(self.db(), "version 1\n")

    def test_a_failed_switch_migration_runs_its_undo_steps(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "svc", "policy": "required",
                               "steps": [self.append("do"),
                                         command_step("boom", [STEP_TOOL, "fail", "2"])],
                               "undo": [self.append("undo")]}])
        self.machine.point_current_system("gen2")
        self.assertEqual(self.machine.run_unit().returncode, 1)
        self.assertEqual(m.lines("/var/lib/log"), ["do", "undo"])
        self.assertEqual(m.migration("svc")["state"], "undone")

    def test_switching_back_to_the_booted_generation_undoes_the_switch(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                               "steps": [self.write_db("convert", "version 2\n")]}])
        self.machine.point_current_system("gen2")
        self.assertEqual(self.machine.run_unit().returncode, 0)
        self.assertEqual(self.db(), "version 2\n")
        self.machine.point_current_system("gen1")  # nixos-rebuild switch --rollback
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.db(), "version 1\n")
        self.assertEqual(m.migration("app-v2")["state"], "undone")
        status = m.status()
        self.assertEqual(status["attempt"]["generation"], "/nix/store/gen1")
        self.assertEqual(status["current"]["generation"], "/nix/store/gen1")
        self.assertNotIn("Current:", m.bootstate("status").stdout)

    def test_a_switch_to_a_plan_without_migrations_changes_nothing(self):
        m = self.machine
        m.write_plan("gen2", [])
        before = m.store_bytes()
        self.machine.point_current_system("gen2")
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.store_bytes(), before)

    def test_a_switch_to_a_generation_without_a_plan_file_changes_nothing(self):
        m = self.machine
        os.makedirs(m.path("/nix/store/gen3"))
        before = m.store_bytes()
        self.machine.point_current_system("gen3")
        result = self.machine.run_unit()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("no plan", result.stderr)
        self.assertEqual(m.store_bytes(), before)

    def test_the_booted_toplevel_spelled_differently_is_not_shown_as_switched(self):
        m = self.machine
        with open(m.path("/proc/cmdline"), "w") as file:
            file.write("init=/nix/store//gen1/init quiet\n")
        self.assertNotIn("Current:", m.bootstate("status").stdout)

    def test_a_plan_of_neither_the_booted_nor_the_current_generation_is_refused(self):
        m = self.machine
        other = m.write_plan("gen3", [{"id": "a", "policy": "required",
                                       "steps": [self.append("a")]}])
        m.write_plan("gen2", [])
        self.machine.point_current_system("gen2")
        before = m.store_bytes()
        result = m.bootstate("run", "--phase", "post-activation", "--plan",
                             other + "/bootstate/plan.json")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("the plan belongs to generation /nix/store/gen3", result.stderr)
        self.assertEqual(m.store_bytes(), before)

    def test_status_json_of_a_switch_names_the_current_generation(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "a", "policy": "optional", "steps": [self.append("a")]}])
        self.machine.point_current_system("gen2")
        status = m.status()
        self.assertEqual(status["current"]["generation"], "/nix/store/gen2")
        self.assertEqual([row["id"] for row in status["migrations"]], ["a"])
        self.assertEqual(json.loads(m.bootstate("--json", "status").stdout)["booted"]["generation"],
                         "/nix/store/gen1")


class UnitsAgree(unittest.TestCase):
    """nixos/module.nix and units/*.service.in declare the same three units: the same phase
    run, notify access, exit 4 as success for post-activation, and nothing that reboots when
    the unit fails (DESIGN "A live switch": bootstate reboots by itself where it arranged a
    fallback; exit 2 or a failed switch must not)."""

    PHASES = ("initrd-pre-mount", "pre-switch-root", "post-activation")
    REBOOTERS = ("FailureAction", "SuccessAction", "StartLimitAction", "JobTimeoutAction",
                 "systemctl reboot")

    @staticmethod
    def code(text):
        """`text` without its comment lines (`#` in both Nix and unit files)."""
        return "\n".join(line for line in text.splitlines()
                         if not line.lstrip().startswith("#"))

    def test_both_run_the_same_phase(self):
        for phase in self.PHASES:
            module = unit_argv.module_argv(phase, "bootstate", "/r")
            installed = unit_argv.unit_file_argv(phase, "bootstate", "/r")
            self.assertEqual(module[-3:], ["run", "--phase", phase], module)
            self.assertEqual(installed[-3:], ["run", "--phase", phase], installed)
            # Only global options before the command, each a known one with its value.
            for argv in (module, installed):
                options = argv[3:-3]
                self.assertEqual(len(options) % 2, 0, argv)
                self.assertLessEqual(set(options[::2]), {"--esp", "--plan"}, argv)

    def test_the_module_units_run_the_real_options(self):
        self.assertEqual(unit_argv.module_argv("post-activation", "b", "/r")[3:-3],
                         ["--esp", "/boot", "--plan", "/run/current-system/bootstate/plan.json"])
        self.assertEqual(unit_argv.module_argv("pre-switch-root", "b", "/r")[3:-3],
                         ["--esp", "/bootstate", "--plan", "/etc/bootstate/plan.json"])

    def test_post_activation_counts_exit_4_as_success_in_both(self):
        self.assertEqual(unit_argv.unit_file("post-activation").get("SuccessExitStatus"), ["4"])
        for phase in self.PHASES[:2]:
            self.assertNotIn("SuccessExitStatus", unit_argv.unit_file(phase))
        module = self.code(unit_argv._read(unit_argv.MODULE))
        self.assertEqual(re.findall(r'SuccessExitStatus = "([^"]*)";', module), ["4"])

    def test_every_unit_takes_notifications_from_bootstate(self):
        for phase in self.PHASES:
            self.assertEqual(unit_argv.unit_file(phase).get("NotifyAccess"), ["main"], phase)
        module = self.code(unit_argv._read(unit_argv.MODULE))
        self.assertEqual(len(re.findall(r'NotifyAccess = "main";', module)), 3)

    def test_no_unit_reboots_on_failure(self):
        texts = {"nixos/module.nix": unit_argv._read(unit_argv.MODULE),
                 "nixos/postgresql/module.nix": unit_argv._read(
                     os.path.join(unit_argv.SOURCE, "nixos", "postgresql", "module.nix"))}
        for phase in self.PHASES:
            texts["units/bootstate-%s.service.in" % phase] = unit_argv._read(
                os.path.join(unit_argv.UNITS, "bootstate-%s.service.in" % phase))
        for name, text in texts.items():
            for word in self.REBOOTERS:
                self.assertNotIn(word, self.code(text), name)


if __name__ == "__main__":
    unittest.main()

"""A live switch followed by real reboots, through the real binary (docs/DESIGN.md "A live
switch"). Unlike test_switch.py, a reboot here is a real one: /run is a tmpfs, so the lock and
/run/current-system are gone, and stage 2 points /run/current-system at the booted generation
before the post-activation unit runs. Power cuts (BOOTSTATE_TEST_CRASH_AT) at every commit of a
switch attempt must leave the old or the new state and then complete, each step run once.
"""

import os
import shutil
import unittest

from harness import Machine, PHASES, STEP_TOOL, command_step

UNIT_PLAN = "/run/current-system/bootstate/plan.json"
MODES = ("before", "after", "torn")


class SwitchThenReboot(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.log = self.machine.path("/var/lib/log")
        self.data = self.machine.path("/var/lib/app")
        os.makedirs(self.data)
        with open(self.data + "/db", "w") as file:
            file.write("version 1\n")
        self.machine.write_plan("gen1", [])
        self.assertEqual(self.boot_into("gen1"), 0)

    def tearDown(self):
        self.machine.cleanup()

    # --- the machine ---------------------------------------------------------------------------

    def boot_into(self, name, env_for=None):
        """A real reboot into generation `name`: a new boot id, an empty /run, the three phases
        (post-activation after stage 2 pointed /run/current-system at the booted generation).
        `env_for` maps a phase to the environment of its run. Returns the last exit status."""
        m = self.machine
        shutil.rmtree(m.path("/run"), ignore_errors=True)
        m.reboot()
        m.boot_into(name)
        for phase in PHASES:
            if phase == "post-activation":
                self.machine.point_current_system(name)
            result = m.run(phase, env=(env_for or {}).get(phase))
            if result.returncode != 0:
                return result.returncode
        return 0

    def switch_to(self, name, env=None):
        """`nixos-rebuild switch`: repoint /run/current-system, restart the unit."""
        self.machine.point_current_system(name)
        return self.machine.bootstate("run", "--phase", "post-activation", "--plan", UNIT_PLAN,
                                      env=env)

    # --- plans ---------------------------------------------------------------------------------

    def append(self, step_id, **extra):
        extra.setdefault("check", [STEP_TOOL, "has", self.log, step_id])
        return command_step(step_id, [STEP_TOOL, "append", self.log, step_id], **extra)

    def convert_db(self):
        return {"id": "app-v2", "policy": "required", "backup": ["/var/lib/app"],
                "steps": [command_step("convert",
                                       [STEP_TOOL, "write", self.data + "/db", "version 2\n"],
                                       idempotent=True),
                          self.append("notify")]}

    def db(self):
        with open(self.data + "/db") as file:
            return file.read()

    # --- the attacks ---------------------------------------------------------------------------

    def test_switch_then_reboot_into_it_completes_blesses_and_runs_nothing_twice(self):
        m = self.machine
        m.write_plan("gen2", [self.convert_db()])
        result = self.switch_to("gen2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.status()["last_good"], "/nix/store/gen1")
        self.assertEqual(self.boot_into("gen2"), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["notify"])
        self.assertEqual(self.db(), "version 2\n")
        status = m.status()
        self.assertEqual(status["attempt"]["generation"], "/nix/store/gen2")
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(status["last_good"], "/nix/store/gen2")
        # A second boot of it changes nothing at all.
        before = m.store_bytes()
        self.assertEqual(self.boot_into("gen2"), 0)
        self.assertEqual(m.store_bytes(), before)

    def test_switch_then_the_admin_boots_the_old_entry_undoes_the_switch(self):
        m = self.machine
        m.write_plan("gen2", [self.convert_db()])
        self.assertEqual(self.switch_to("gen2").returncode, 0)
        self.assertEqual(self.db(), "version 2\n")
        self.assertEqual(self.boot_into("gen1"), 0)
        self.assertEqual(self.db(), "version 1\n")
        self.assertEqual(m.migration("app-v2")["state"], "undone")
        status = m.status()
        self.assertEqual(status["attempt"]["generation"], "/nix/store/gen1")
        self.assertEqual(status["last_good"], "/nix/store/gen1")
        # And booting gen2 afterwards applies it again, from scratch.
        self.assertEqual(self.boot_into("gen2"), 0)
        self.assertEqual(self.db(), "version 2\n")
        self.assertEqual(m.lines("/var/lib/log"), ["notify", "notify"])
        self.assertEqual(m.migration("app-v2")["state"], "applied")
        self.assertEqual(m.status()["last_good"], "/nix/store/gen2")

    def test_switch_with_initrd_work_then_a_boot_runs_it_in_the_same_attempt(self):
        m = self.machine
        m.write_plan("gen2", [
            {"id": "early", "policy": "required",
             "steps": [self.append("early", phase="initrd-pre-mount")]},
            {"id": "late", "policy": "required", "steps": [self.append("late")]}])
        result = self.switch_to("gen2")
        self.assertEqual(result.returncode, 4, result.stderr)
        attempt = m.status()["attempt"]["number"]
        self.assertEqual(self.boot_into("gen2"), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["late", "early"])
        status = m.status()
        self.assertEqual(status["attempt"]["number"], attempt)
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(status["last_good"], "/nix/store/gen2")

    def test_switch_to_gen2_then_to_gen3_without_a_reboot(self):
        m = self.machine
        shared = {"id": "shared", "policy": "required", "steps": [self.append("shared")]}
        m.write_plan("gen2", [self.convert_db(), shared])
        m.write_plan("gen3", [shared, {"id": "three", "policy": "required",
                                       "steps": [self.append("three")]}])
        self.assertEqual(self.switch_to("gen2").returncode, 0)
        result = self.switch_to("gen3")
        self.assertEqual(result.returncode, 0, result.stderr)
        # gen3 does not have app-v2: it is undone; `shared` is not run again.
        self.assertEqual(self.db(), "version 1\n")
        self.assertEqual(m.migration("shared")["state"], "applied")
        # app-v2 and shared are independent: with --jobs (default 4) they run at once, in
        # either order (issue #15 item 4).
        log = m.lines("/var/lib/log")
        self.assertEqual(sorted(log[:2]), ["notify", "shared"])
        self.assertEqual(log[2:], ["three"])
        status = m.status()
        self.assertEqual(status["attempt"]["generation"], "/nix/store/gen3")
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(status["last_good"], "/nix/store/gen1")
        self.assertEqual(self.boot_into("gen3"), 0)
        self.assertEqual(m.lines("/var/lib/log"), log)
        self.assertEqual(m.status()["last_good"], "/nix/store/gen3")

    def test_the_old_generation_booted_mid_way_through_a_multi_boot_migration(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "two-boots", "policy": "required",
                               "backup": ["/var/lib/app"],
                               "steps": [command_step("convert", [STEP_TOOL, "write",
                                                                  self.data + "/db",
                                                                  "version 2\n"], reboot=True),
                                         self.append("finish", phase="initrd-pre-mount")]}])
        self.assertEqual(self.boot_into("gen2"), 4)  # convert ran, asks for a reboot
        self.assertEqual(self.db(), "version 2\n")
        # The admin picks gen1 instead: the attempt is abandoned, the migration undone.
        self.assertEqual(self.boot_into("gen1"), 0)
        self.assertEqual(self.db(), "version 1\n")
        self.assertEqual(m.migration("two-boots")["state"], "undone")
        self.assertEqual(m.lines("/var/lib/log"), [])
        # Then gen2 again: from the start, over two boots, each step once per application.
        self.assertEqual(self.boot_into("gen2"), 4)
        self.assertEqual(self.boot_into("gen2"), 0)
        self.assertEqual(self.db(), "version 2\n")
        self.assertEqual(m.lines("/var/lib/log"), ["finish"])
        self.assertEqual(m.migration("two-boots")["state"], "applied")
        self.assertEqual(m.status()["last_good"], "/nix/store/gen2")

    def test_a_power_cut_at_every_commit_of_a_switch(self):
        cases = 0
        # Commits of the switch: reconcile (attempt opened), backup, convert running/done,
        # notify running/done, attempt complete: 6; one point past the last: no crash.
        for point in range(1, 8):
            for mode in MODES:
                with self.subTest(commit=point, mode=mode):
                    self.tearDown()
                    self.setUp()
                    m = self.machine
                    m.write_plan("gen2", [self.convert_db()])
                    before = m.status()
                    crashed = self.switch_to(
                        "gen2", env={"BOOTSTATE_TEST_CRASH_AT": "%d:%s" % (point, mode)})
                    self.assertIn(crashed.returncode, (0, -9), crashed.stderr)
                    # Old or new: the status reads, and an attempt is either gen1's or gen2's.
                    after = m.status()
                    self.assertIn(after["attempt"]["generation"],
                                  (before["attempt"]["generation"], "/nix/store/gen2"))
                    # The unit runs again (systemd restarts it, or the next switch does).
                    result = self.switch_to("gen2")
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertEqual(self.db(), "version 2\n")
                    self.assertEqual(m.lines("/var/lib/log"), ["notify"])
                    self.assertEqual(m.migration("app-v2")["state"], "applied")
                    self.assertEqual(m.status()["attempt"]["state"], "complete")
                    self.assertEqual(self.boot_into("gen2"), 0)
                    self.assertEqual(m.lines("/var/lib/log"), ["notify"])
                    self.assertEqual(m.status()["last_good"], "/nix/store/gen2")
                    cases += 1
        self.assertEqual(cases, 7 * len(MODES))


if __name__ == "__main__":
    unittest.main()

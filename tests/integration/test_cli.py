"""The real binary through several boots of a --root tree (issue: core, item 8)."""

import json
import os
import shutil
import subprocess
import unittest

from harness import Machine, STEP_TOOL, command_step


class Boots(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.log = self.machine.path("/var/lib/log")

    def tearDown(self):
        self.machine.cleanup()

    def append(self, step_id, text=None, **extra):
        return command_step(step_id, [STEP_TOOL, "append", self.log, text or step_id], **extra)

    def establish(self, name="gen1", migrations=()):
        self.machine.write_plan(name, list(migrations))
        self.machine.boot_into(name)
        self.assertEqual(self.machine.boot(), 0)
        self.machine.reboot()

    def test_three_step_migration_with_a_reboot_in_the_middle_completes(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [
            self.append("one"), self.append("two", reboot=True), self.append("three")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 4)  # reboot required (--root implies --no-reboot)
        self.assertEqual(m.lines("/var/lib/log"), ["one", "two"])
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "in-progress")
        self.assertEqual([s["state"] for s in status["migrations"][0]["steps"]],
                         ["done", "done", "pending"])
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["one", "two", "three"])
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(status["attempt"]["boots"], 2)
        self.assertEqual(status["last_good"], "/nix/store/gen2")
        self.assertEqual(status["migrations"][0]["state"], "applied")

    def test_a_failed_required_step_exits_1_and_status_says_why(self):
        m = self.machine
        self.establish()
        m.write_plan("gen2", [{"id": "bad", "policy": "required", "steps": [
            command_step("boom", [STEP_TOOL, "fail", "3"])]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 1)
        migration = m.migration("bad")
        self.assertEqual(migration["state"], "failed")
        self.assertEqual(migration["steps"][0]["state"], "failed")
        self.assertEqual(migration["steps"][0]["exit_status"], 3)
        self.assertEqual(migration["steps"][0]["message"], "exit status 3")
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertIn('step "boom" failed: exit status 3', status["attempt"]["reason"])
        log = os.listdir(m.path("/var/lib/bootstate/logs"))
        self.assertTrue(any("bad-boom" in name for name in log), log)

    def test_stale_migration_is_undone_and_its_backup_restored(self):
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
        with open(data + "/db") as file:
            self.assertEqual(file.read(), "version 2\n")
        m.reboot()
        m.boot_into("gen1")  # rolled back: gen1's plan has no app-v2
        self.assertEqual(m.boot(), 0)
        with open(data + "/db") as file:
            self.assertEqual(file.read(), "version 1\n")
        migration = m.migration("app-v2")
        self.assertEqual(migration["state"], "undone")
        self.assertFalse(migration["in_plan"])

    def test_optional_migration_waits_for_accept(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "extra", "policy": "optional", "steps": [self.append("x")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), [])
        self.assertEqual(m.migration("extra")["readiness"], "needs accept")
        result = m.bootstate("accept", "extra")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.run("post-activation").returncode, 0)
        self.assertEqual(m.lines("/var/lib/log"), ["x"])
        self.assertEqual(m.migration("extra")["state"], "applied")

    def test_declined_recommended_migration_is_skipped(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "nice", "policy": "recommended",
                               "steps": [self.append("n", phase="initrd-pre-mount")]}])
        m.boot_into("gen2")
        self.assertEqual(m.bootstate("decline", "nice").returncode, 0)
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), [])
        self.assertEqual(m.migration("nice")["state"], "declined")

    def test_a_boot_with_nothing_pending_writes_nothing(self):
        m = self.machine
        m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [self.append("a")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        before = m.store_bytes()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.store_bytes(), before)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])

    def test_preview_shows_reboots_and_initrd_work(self):
        m = self.machine
        self.establish()
        toplevel = m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [
            self.append("one", reboot=True), self.append("two", phase="initrd-pre-mount")]}])
        result = m.bootstate("--json", "preview", toplevel)
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual(report["reboots"], 1)
        self.assertTrue(report["initrd_work"])
        self.assertEqual([(a["boot"], a["step"]) for a in report["actions"]],
                         [(1, "one"), (2, "two")])
        self.assertEqual(m.lines("/var/lib/log"), [])  # preview changes nothing

    def test_preview_of_a_plan_with_a_blocked_stale_migration_exits_1(self):
        m = self.machine
        self.establish()
        m.write_plan("gen2", [{"id": "bare", "policy": "required", "steps": [self.append("b")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        result = m.bootstate("preview", m.toplevel("gen1"))
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn('stale migration "bare" cannot be undone', result.stdout)

    def test_storage_step_grows_a_partition_before_mount_and_preview_shows_the_tables(self):
        m = self.machine
        if not shutil.which("sfdisk"):
            self.skipTest("sfdisk (package fdisk) is not installed")
        os.makedirs(m.path("/dev"), exist_ok=True)
        image = m.path("/dev/vdb")
        with open(image, "wb") as file:
            file.truncate(64 << 20)
        subprocess.run(["sfdisk", "--quiet", image], input="label: gpt\nsize=16M, name=data\n",
                       text=True, check=True)
        toplevel = m.write_plan("gen2", [{"id": "grow-data", "policy": "required", "steps": [{
            "id": "grow", "phase": "initrd-pre-mount", "kind": "storage", "operations": [
                {"op": "grow-partition", "disk": "/dev/vdb", "partition": "PARTLABEL=data",
                 "size": "max"}]}]}])
        result = m.bootstate("--json", "preview", toplevel)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        action = json.loads(result.stdout)["actions"][0]
        self.assertEqual((action["phase"], action["action"]), ("initrd-pre-mount", "run"))
        self.assertTrue(action["irreversible"])
        self.assertIsInstance(action["detail"], dict)
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        dump = subprocess.run(["sfdisk", "--json", image], capture_output=True, text=True,
                              check=True)
        partition = json.loads(dump.stdout)["partitiontable"]["partitions"][0]
        self.assertGreater(partition["size"] * 512, 60 << 20)
        self.assertEqual(m.migration("grow-data")["state"], "applied")

    def make_disk_image(self, layout):
        m = self.machine
        if not shutil.which("sfdisk"):
            self.skipTest("sfdisk (package fdisk) is not installed")
        os.makedirs(m.path("/dev"), exist_ok=True)
        image = m.path("/dev/vdb")
        with open(image, "wb") as file:
            file.truncate(64 << 20)
        subprocess.run(["sfdisk", "--quiet", image], input=layout, text=True, check=True)
        return image

    def real_reboot(self):
        """A reboot as a machine has it: /run is a tmpfs, so what the initrd kept there is gone."""
        shutil.rmtree(self.machine.path("/run"), ignore_errors=True)
        self.machine.reboot()

    def test_booting_gen1_reverts_gen2s_storage_steps_for_real(self):
        # issue #13 item 2: the revert was given the undo step's (empty) record instead of the
        # forward step's undo record, so it said "nothing to undo" and status said "undone".
        m = self.machine
        image = self.make_disk_image(
            "label: gpt\nsize=8M, name=data\nsize=8M, name=old-name\n")
        original = subprocess.run(["sfdisk", "-d", image], capture_output=True, text=True,
                                  check=True).stdout
        self.establish()
        m.write_plan("gen2", [{"id": "layout", "policy": "required", "steps": [
            {"id": "add", "phase": "initrd-pre-mount", "kind": "storage", "operations": [
                {"op": "add-partition", "disk": "/dev/vdb", "name": "extra",
                 "type": "linux", "size": "8M"}]},
            {"id": "rename", "phase": "initrd-pre-mount", "kind": "storage", "operations": [
                {"op": "set-partition-name", "disk": "/dev/vdb", "partition": "PARTLABEL=old-name",
                 "name": "new-name"}]}]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        changed = subprocess.run(["sfdisk", "-d", image], capture_output=True, text=True,
                                 check=True).stdout
        self.assertIn('name="extra"', changed)
        self.assertIn('name="new-name"', changed)
        self.assertEqual(m.migration("layout")["state"], "applied")

        self.real_reboot()
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        reverted = subprocess.run(["sfdisk", "-d", image], capture_output=True, text=True,
                                  check=True).stdout
        self.assertEqual(reverted, original)
        migration = m.migration("layout")
        self.assertEqual(migration["state"], "undone")

    def test_after_the_store_was_lost_a_step_that_ran_is_held_until_accept(self):
        # issue #13 item 5: a non-idempotent step without a check ran again after the store was
        # lost. Now it waits for the operator's word.
        m = self.machine
        m.write_plan("gen2", [{"id": "once", "policy": "required", "steps": [self.append("a")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])
        for slot in ("state.0", "state.1"):
            path = m.path("/boot/bootstate/" + slot)
            with open(path, "wb") as file:
                file.write(b"garbage" * 10)
        m.reboot()
        result = m.run("initrd-pre-mount")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("moved aside", result.stderr)
        self.assertEqual(m.run("pre-switch-root").returncode, 0)
        result = m.run("post-activation")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("bootstate accept once", result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # not run again
        migration = m.migration("once")
        self.assertEqual(migration["readiness"], "held")
        self.assertIn("cannot tell whether it ran", migration["detail"])
        self.assertEqual(m.status()["attempt"]["state"], "in-progress")

        result = m.bootstate("accept", "once")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(m.run("post-activation").returncode, 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a", "a"])
        self.assertEqual(m.status()["attempt"]["state"], "complete")

    def test_declining_what_a_required_migration_follows_is_refused(self):
        # issue #13 item 3: declining "nice" left "must" blocked, and the attempt was blessed.
        m = self.machine
        m.write_plan("gen2", [
            {"id": "nice", "policy": "recommended", "steps": [self.append("n")]},
            {"id": "must", "policy": "required", "after": ["nice"], "steps": [self.append("m")]}])
        m.boot_into("gen2")
        before = m.store_bytes()
        result = m.bootstate("decline", "nice")
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn('required migration "must" runs after it', result.stderr)
        self.assertEqual(m.store_bytes(), before)
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["n", "m"])

    def test_a_required_migration_after_a_failed_recommended_one_fails_the_boot(self):
        m = self.machine
        self.establish()
        m.write_plan("gen2", [
            {"id": "nice", "policy": "recommended", "steps": [
                command_step("boom", [STEP_TOOL, "fail", "3"])]},
            {"id": "must", "policy": "required", "after": ["nice"], "steps": [self.append("m")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 1)
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertIn('required migration "must" cannot run', status["attempt"]["reason"])
        self.assertIn('"nice"', status["attempt"]["reason"])
        self.assertEqual(status["last_good"], "/nix/store/gen1")
        self.assertEqual(m.lines("/var/lib/log"), [])

    def test_a_changed_definition_of_an_applied_migration_blocks_preview_and_boot(self):
        # issue #13 item 4: gen3 added a step to applied "app"; the step stayed pending forever
        # while the attempt completed.
        m = self.machine
        m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [self.append("a")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        toplevel = m.write_plan("gen3", [{"id": "app", "policy": "required", "steps": [
            self.append("a"), self.append("b")]}])
        result = m.bootstate("preview", toplevel)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn('"app"', result.stdout)
        self.assertIn("definition changed", result.stdout)
        m.boot_into("gen3")
        self.assertEqual(m.boot(), 1)
        migration = m.migration("app")
        self.assertEqual(migration["readiness"], "blocked")
        self.assertTrue(migration["definition_changed"])
        status = m.status()
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertIn("definition changed", status["attempt"]["reason"])
        self.assertEqual(status["last_good"], "/nix/store/gen2")
        self.assertEqual(m.lines("/var/lib/log"), ["a"])

    def test_a_generation_blocked_by_a_changed_definition_does_not_point_at_retry(self):
        # Retry cannot help (the migration is applied, not failed: `retry` refuses it); the
        # reason says what does (a new id). Every later boot must not say otherwise.
        m = self.machine
        m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [self.append("a")]}])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        m.write_plan("gen3", [{"id": "app", "policy": "required", "steps": [
            self.append("a"), self.append("b")]}])
        m.boot_into("gen3")
        for _ in range(2):
            m.reboot()
            result = m.run("initrd-pre-mount")
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("give the new definition a new id", result.stderr)
            self.assertNotIn("bootstate retry", result.stderr)
        self.assertEqual(m.bootstate("retry", "app").returncode, 2)

    def test_history_lists_attempts(self):
        m = self.machine
        self.establish()
        m.write_plan("gen2", [])
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        result = m.bootstate("history")
        self.assertEqual(result.returncode, 0)
        self.assertIn("/nix/store/gen1", result.stdout)
        self.assertIn("/nix/store/gen2", result.stdout)


if __name__ == "__main__":
    unittest.main()

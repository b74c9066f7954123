"""The three example checks of docs/CHECKS.md (nixos/checks/) through the real binary over
several boots of a --root tree: a user whose uid changes, a kernel feature the running kernel
lacks, free space for a backup. Each check's plan entry is rendered by nixos/checks/checks.nix
(`nix-instantiate --eval`), so what runs here is what the NixOS function declares.

For each: `preview` of the generation shows the item with its resolutions (exit 1 for an
error); the boot without a choice fails and falls back; after the printed `choose` (or, for a
check without resolutions, the printed `retry` once the operator made room) the boot applies it;
the good case reports nothing; a broken input is an error item, never a pass."""

import gzip
import json
import os
import subprocess
import unittest

from example_check_base import (ACCOUNT, FREE_SPACE, KERNEL, PRE_SWITCH, ExampleCheck,
                                render)
from harness import BOOTSTATE

class AccountCheckTest(ExampleCheck):
    """`app` is uid 1000 on the machine; generation g2 declares it 1001."""

    def setUp(self):
        super().setUp()
        self.passwd(1000)
        for name in ("a", "sub/b"):
            self.write("/var/lib/app/" + name, "data " + name)
        self.write("/var/lib/app/root-file", "root's")
        for directory, _, files in os.walk(self.machine.path("/var/lib/app")):
            os.chown(directory, 1000, 1000)
            for name in files:
                if name != "root-file":
                    os.chown(os.path.join(directory, name), 1000, 1000)
        self.g1 = self.machine.write_plan("g1", [], checks=[self.check(1000)])
        self.assertEqual(self.boot("g1"), 0)

    def check(self, uid):
        return render("account", exe=ACCOUNT, user="app", uid=uid, dirs=["/var/lib/app"])

    def passwd(self, app_uid, other=""):
        """What NixOS' activation writes: /etc/passwd with app's uid of that generation."""
        text = "root:x:0:0::/root:/bin/sh\n" + other
        if app_uid is not None:
            text += "app:x:%d:%d::/var/lib/app:/bin/sh\n" % (app_uid, app_uid)
        self.write("/etc/passwd", text)

    def owners(self):
        found = {}
        base = self.machine.path("/var/lib/app")
        for directory, _, files in os.walk(base):
            for name in ["."] + files:
                path = os.path.normpath(os.path.join(directory, name))
                found[os.path.relpath(path, base)] = os.lstat(path).st_uid
        return found

    def test_good_case_reports_nothing(self):
        code, document = self.preview(self.g1)
        self.assertEqual(code, 0)
        self.assertEqual(document["items"], [])
        self.assertEqual(self.machine.status()["attempt"]["state"], "complete")

    def test_uid_change_predicted_blocked_chosen_chowned_and_undone(self):
        machine = self.machine
        g2 = machine.write_plan("g2", [], checks=[self.check(1001)])
        code, document = self.preview(g2)
        self.assertEqual(code, 1)
        self.assertTrue(document["blocked"])
        item = self.item(document, "uid-app-1000-to-1001")
        self.assertEqual(item["severity"], "error")
        self.assertEqual([r["id"] for r in item["resolutions"]], ["chown-data"])
        self.assertIn("would belong to whoever gets uid 1000", item["message"])

        # Booted without a choice (activation already gave app 1001): the files still carry
        # 1000, the check says so, the boot fails and nothing was chowned.
        self.passwd(1001)
        self.assertEqual(self.boot("g2"), 1)
        self.assertEqual(set(self.owners().values()), {0, 1000})
        self.passwd(1000)
        self.assertEqual(self.boot("g1"), 0)
        self.assertEqual(self.item(machine.status(), "uid-app-1000-to-1001")["state"], "open")

        words = self.printed_command(g2, "choose")
        self.assertEqual(words[1:], ["choose", "--plan", g2, "uid-app-1000-to-1001", "chown-data"])
        chosen = machine.bootstate(*words[1:])
        self.assertEqual(chosen.returncode, 0, chosen.stderr)
        self.passwd(1001)
        self.assertEqual(self.boot("g2"), 0, machine.status())
        owners = self.owners()
        self.assertEqual(owners.pop("root-file"), 0)  # another owner's file stays as it was
        self.assertEqual(set(owners.values()), {1001}, owners)
        self.assertEqual(machine.migration("account-app.chown-data")["state"], "applied")
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(self.item(status, "uid-app-1000-to-1001")["state"], "resolved")
        self.assertEqual(machine.lines("/var/lib/bootstate-checks/account/app"), ["1000"])
        # Written by app (1001) after the change: goes back with the rest.
        self.write("/var/lib/app/new", "written on g2")
        os.chown(machine.path("/var/lib/app/new"), 1001, 1001)

        # Back to g1: its undo gives the files back to 1000 and forgets the record.
        self.passwd(1000)
        self.assertEqual(self.boot("g1"), 0, machine.status())
        owners = self.owners()
        self.assertEqual(owners.pop("root-file"), 0)
        self.assertEqual(set(owners.values()), {1000}, owners)
        self.assertEqual(machine.migration("account-app.chown-data")["state"], "undone")
        self.assertFalse(os.path.exists(machine.path("/var/lib/bootstate-checks/account/app")))

    def test_a_directory_of_another_account_is_not_taken(self):
        # /var/lib/app belongs to root (activation already gave app 1001): root's directory is
        # not app's old uid, and chown-data would have handed root's files to app.
        os.chown(self.machine.path("/var/lib/app"), 0, 0)
        self.passwd(1001)
        g2 = self.machine.write_plan("g2", [], checks=[self.check(1001)])
        code, document = self.preview(g2)
        self.assertEqual((code, document["items"]), (0, []))

    def test_an_interrupted_chown_resumes_from_its_record(self):
        # A power cut after the record and part of the files (the directory itself among
        # them): the machine alone no longer shows the old uid, the record does. The steps run
        # as rendered, the way bootstate runs them (BOOTSTATE_ROOT, no shell).
        machine = self.machine
        self.passwd(1001)
        self.write("/var/lib/bootstate-checks/account/app", "1000\n")
        for path in ("/var/lib/app", "/var/lib/app/a"):
            os.chown(machine.path(path), 1001, 1001)
        resolution = self.check(1001)["resolutions"][0]
        environment = {"BOOTSTATE_ROOT": machine.root, "PATH": "/usr/bin:/bin"}
        for argv in (resolution["steps"][0]["command"], resolution["steps"][0]["command"]):
            subprocess.run(argv, env=environment, check=True, capture_output=True)
        owners = self.owners()
        self.assertEqual(owners.pop("root-file"), 0)
        self.assertEqual(set(owners.values()), {1001}, owners)
        for _ in range(2):  # the undo, also twice: the second finds no record, changes nothing
            subprocess.run(resolution["undo"][0]["command"], env=environment, check=True,
                           capture_output=True)
            owners = self.owners()
            self.assertEqual(owners.pop("root-file"), 0)
            self.assertEqual(set(owners.values()), {1000}, owners)
        self.assertFalse(os.path.exists(machine.path("/var/lib/bootstate-checks/account/app")))

    def test_missing_user_is_a_warning_and_a_taken_uid_an_error(self):
        self.passwd(None)
        g2 = self.machine.write_plan("g2", [], checks=[self.check(1001)])
        os.chown(self.machine.path("/var/lib/app"), 1001, 1001)
        for path in ("/var/lib/app/a", "/var/lib/app/sub", "/var/lib/app/sub/b"):
            os.chown(self.machine.path(path), 1001, 1001)
        code, document = self.preview(g2)
        self.assertEqual(code, 0, document)
        item = self.item(document, "user-app-missing")
        self.assertEqual((item["severity"], item["resolutions"]), ("warning", []))

        self.passwd(None, other="db:x:1001:1001::/:/bin/sh\n")
        code, document = self.preview(g2)
        self.assertEqual(code, 1)
        item = self.item(document, "uid-1001-taken")
        self.assertEqual((item["severity"], item["resolutions"]), ("error", []))

    def test_unreadable_passwd_is_an_error_never_a_pass(self):
        os.unlink(self.machine.path("/etc/passwd"))
        code, document = self.preview(self.g1)
        self.assertEqual(code, 1)
        self.assertEqual(self.item(document, "check-failed")["severity"], "error")

    def test_a_linked_directory_is_an_error_never_a_pass(self):
        # After activation /etc/passwd says 1001; the data, behind a link, still has 1000.
        # Skipping the link would pass with every file on the old uid; following it could
        # leave the tree.
        machine = self.machine
        os.rename(machine.path("/var/lib/app"), machine.path("/var/lib/app-real"))
        os.symlink("app-real", machine.path("/var/lib/app"))
        self.passwd(1001)
        g2 = machine.write_plan("g2", [], checks=[self.check(1001)])
        code, document = self.preview(g2)
        self.assertEqual(code, 1)
        self.assertEqual(self.item(document, "check-failed")["severity"], "error")


class KernelFeatureCheckTest(ExampleCheck):
    """Running kernel 6.1.0-old knows ext4 only; g2's kernel 6.6.1-new has btrfs and
    CONFIG_WIREGUARD, which g2 needs."""

    def setUp(self):
        super().setUp()
        self.kernel("6.1.0-old", ["ext4"], ["CONFIG_EXT4_FS=y", "# CONFIG_WIREGUARD is not set"])
        self.g1 = self.machine.write_plan("g1", [], checks=[
            render("kernelFeatures", exe=KERNEL, kernelRelease="6.1.0-old", filesystems=["ext4"])])
        self.assertEqual(self.boot("g1"), 0)
        self.g2 = self.machine.write_plan("g2", [], checks=[self.g2_check()])

    def g2_check(self):
        return render("kernelFeatures", exe=KERNEL, kernelRelease="6.6.1-new",
                      filesystems=["btrfs"], configs=["CONFIG_WIREGUARD"])

    def kernel(self, release, filesystems, config):
        """The running kernel as /proc shows it."""
        self.write("/proc/sys/kernel/osrelease", release + "\n")
        self.write("/proc/filesystems", "nodev\tsysfs\nnodev\tproc\n"
                   + "".join("\t%s\n" % f for f in filesystems))
        with gzip.open(self.machine.path("/proc/config.gz"), "wt") as file:
            file.write("\n".join(config) + "\n")

    def pre_switch(self, action):
        return subprocess.run(["bash", PRE_SWITCH, self.g2, action, BOOTSTATE, "--root",
                               self.machine.root],
                              env=dict(os.environ, BOOTSTATE_TREE=self.machine.root),
                              capture_output=True, text=True, timeout=120)

    def test_good_case_reports_nothing(self):
        code, document = self.preview(self.g1)
        self.assertEqual((code, document["items"]), (0, []))

    def test_missing_feature_predicted_then_live_switch_waits_for_the_reboot(self):
        machine = self.machine
        code, document = self.preview(self.g2)
        self.assertEqual(code, 1)
        item = self.item(document, "running-kernel-lacks-features")
        self.assertEqual(item["severity"], "error")
        self.assertEqual([r["id"] for r in item["resolutions"]], ["reboot-into-new-kernel"])
        self.assertIn("lacks: file system btrfs, CONFIG_WIREGUARD", item["message"])

        refused = self.pre_switch("boot")  # before the choice: refused, naming the command
        self.assertEqual(refused.returncode, 1)
        self.assertIn("running-kernel-lacks-features reboot-into-new-kernel", refused.stderr)
        words = self.printed_command(self.g2, "choose")
        self.assertEqual(words[-2:], ["running-kernel-lacks-features", "reboot-into-new-kernel"])
        self.assertEqual(machine.bootstate(*words[1:]).returncode, 0)
        # Chosen: no blocker, but initrd work, which the pre-switch check refuses for a live
        # switch (nixos-rebuild boot instead).
        code, document = self.preview(self.g2)
        self.assertEqual(code, 0, document)
        self.assertTrue(document["initrd_work"])

        # The module's pre-switch check (nixos/pre-switch-check.sh) refuses a live switch now
        # and lets `nixos-rebuild boot` through: the reboot is the resolution.
        self.assertEqual(self.pre_switch("switch").returncode, 1)
        self.assertIn("Use 'nixos-rebuild boot' and reboot.", self.pre_switch("switch").stderr)
        self.assertEqual(self.pre_switch("boot").returncode, 0)

        # A live switch anyway (switch-to-configuration restarting the post-activation unit):
        # the resolution's step waits for a boot: exit 4, the attempt stays open.
        machine.point_current_system("g2")
        switched = machine.run("post-activation")
        self.assertEqual(switched.returncode, 4, switched.stdout + switched.stderr)
        self.assertEqual(machine.status()["attempt"]["state"], "in-progress")

        # The reboot into g2 with its kernel: the initrd verifies, the check is quiet.
        os.unlink(machine.path("/run/current-system"))
        self.kernel("6.6.1-new", ["ext4", "btrfs"], ["CONFIG_WIREGUARD=m"])
        self.assertEqual(self.boot("g2"), 0, machine.status())
        migration = machine.migration("kernel-features.reboot-into-new-kernel")
        self.assertEqual(migration["state"], "applied")
        self.assertEqual(migration["steps"][0]["phase"], "pre-switch-root")
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertEqual(self.item(status, "running-kernel-lacks-features")["state"], "resolved")

    def test_the_initrd_copy_of_the_plan_runs_the_chosen_step(self):
        # On NixOS the initrd phases read /etc/bootstate/plan.json, whose generation is
        # "/run/booted-system" (it cannot name its toplevel) and which carries the same checks:
        # the choice made for g2 applies to it.
        machine = self.machine
        self.assertEqual(machine.bootstate("choose", "--plan", self.g2,
                                           "running-kernel-lacks-features",
                                           "reboot-into-new-kernel").returncode, 0)
        with open(machine.path(self.g2 + "/bootstate/plan.json")) as file:
            plan = json.load(file)
        plan["generation"] = "/run/booted-system"
        self.write("/etc/bootstate/plan.json", json.dumps(plan))
        self.kernel("6.6.1-new", ["ext4", "btrfs"], ["CONFIG_WIREGUARD=m"])
        machine.boot_into("g2")
        machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            result = machine.bootstate("--plan", "/etc/bootstate/plan.json", "run", "--phase", phase)
            self.assertEqual(result.returncode, 0, result.stderr)
        step = machine.migration("kernel-features.reboot-into-new-kernel")["steps"][0]
        self.assertEqual((step["phase"], step["state"]), ("pre-switch-root", "done"))
        self.assertEqual(machine.run("post-activation").returncode, 0)
        self.assertEqual(machine.status()["attempt"]["state"], "complete")

    def test_a_boot_into_a_kernel_that_lacks_it_too_fails(self):
        machine = self.machine
        self.assertEqual(machine.bootstate("choose", "--plan", self.g2,
                                           "running-kernel-lacks-features",
                                           "reboot-into-new-kernel").returncode, 0)
        # g2's own kernel, but without btrfs: the step in the initrd fails, so does the boot.
        self.kernel("6.6.1-new", ["ext4"], ["CONFIG_WIREGUARD=y"])
        self.assertEqual(self.boot("g2"), 1)
        step = machine.migration("kernel-features.reboot-into-new-kernel")["steps"][0]
        self.assertEqual(step["state"], "failed")
        # And preview, on that kernel, says a reboot would not help.
        code, document = self.preview(self.g2)
        self.assertEqual(code, 1)
        item = self.item(document, "kernel-6.6.1-new-lacks-features")
        self.assertEqual(item["resolutions"], [])
        self.assertIn("file system btrfs", item["message"])

    def test_a_file_system_as_a_module_counts(self):
        # Not loaded (not in /proc/filesystems) but CONFIG_BTRFS_FS=m: the kernel has it.
        self.kernel("6.1.0-old", ["ext4"], ["CONFIG_BTRFS_FS=m", "CONFIG_WIREGUARD=y"])
        code, document = self.preview(self.g2)
        self.assertEqual((code, document["items"]), (0, []))

    def test_unreadable_proc_is_an_error_never_a_pass(self):
        for missing in ("/proc/filesystems", "/proc/config.gz"):
            self.kernel("6.1.0-old", ["ext4", "btrfs"], ["CONFIG_WIREGUARD=y"])
            self.assertEqual(self.preview(self.g2)[0], 0)
            os.unlink(self.machine.path(missing))
            code, document = self.preview(self.g2)
            self.assertEqual(code, 1, missing)
            self.assertEqual(self.item(document, "check-failed")["severity"], "error")


class FreeSpaceCheckTest(ExampleCheck):
    """g2's migration backs up /var/lib/data (600 KiB); bootstate's backups live on a 1 MiB
    tmpfs (a real file system: statvfs, no test hook)."""

    def setUp(self):
        super().setUp()
        backups = self.machine.path("/var/lib/bootstate/backups")
        os.makedirs(backups)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", backups],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            raise AssertionError("this test mounts a 1 MiB tmpfs (needs root): " + mounted.stderr)
        self.addCleanup(subprocess.run, ["umount", backups])
        self.write("/var/lib/data/blob", os.urandom(600 * 1024), mode="wb")
        self.machine.write_plan("g1", [])
        self.assertEqual(self.boot("g1"), 0)
        migration = {"id": "reshape-data", "policy": "required", "backup": ["/var/lib/data"],
                     "steps": [{"id": "reshape", "phase": "post-activation", "kind": "command",
                                "command": ["/bin/touch", self.machine.path("/var/lib/data/reshaped")]}]}
        self.g2 = self.machine.write_plan("g2", [migration], checks=[
            render("freeSpace", exe=FREE_SPACE, paths=["/var/lib/data"])])

    def fill(self, kib):
        self.write("/var/lib/bootstate/backups/filler", b"\0" * (kib * 1024), mode="wb")

    def test_good_case_reports_nothing(self):
        code, document = self.preview(self.g2)
        self.assertEqual((code, document["items"]), (0, []))

    def test_not_enough_room_blocks_until_room_is_made(self):
        machine = self.machine
        self.fill(700)
        code, document = self.preview(self.g2)
        self.assertEqual(code, 1)
        item = self.item(document, "backup-does-not-fit")
        self.assertEqual((item["severity"], item["resolutions"]), ("error", []))
        self.assertRegex(item["message"], r"need 60\d KiB, the file system of "
                         r"/var/lib/bootstate/backups has 3\d\d KiB free")
        self.assertEqual(self.boot("g2"), 1)
        self.assertFalse(os.path.exists(machine.path("/var/lib/data/reshaped")))
        self.assertEqual(self.boot("g1"), 0)

        # The operator makes room, then runs the command that preview (and status, after the
        # fallback) prints for an item without resolutions.
        words = self.printed_command(self.g2, "retry")
        self.assertEqual(words[1:], ["retry", "--plan", self.g2, "free-space"])
        self.assertIn(" ".join(words), machine.bootstate("status").stdout)
        os.unlink(machine.path("/var/lib/bootstate/backups/filler"))
        retried = machine.bootstate(*words[1:])
        self.assertEqual(retried.returncode, 0, retried.stdout + retried.stderr)
        self.assertEqual(self.boot("g2"), 0, machine.status())
        self.assertTrue(os.path.exists(machine.path("/var/lib/data/reshaped")))
        self.assertEqual(machine.migration("reshape-data")["state"], "applied")
        # The backup really is on the small file system.
        self.assertEqual(machine.status()["attempt"]["state"], "complete")
        self.assertTrue(os.path.isdir(machine.path("/var/lib/bootstate/backups/reshape-data")))

    def test_little_room_left_is_a_warning(self):
        self.fill(350)
        code, document = self.preview(self.g2)
        self.assertEqual(code, 0, document)
        item = self.item(document, "backup-leaves-little-space")
        self.assertEqual((item["severity"], item["resolutions"]), ("warning", []))

    def test_bad_input_is_an_error_never_a_pass(self):
        broken = render("freeSpace", exe=FREE_SPACE, paths=["var/lib/data"])  # not absolute
        g3 = self.machine.write_plan("g3", [], checks=[broken])
        code, document = self.preview(g3)
        self.assertEqual(code, 1)
        self.assertEqual(self.item(document, "check-failed")["severity"], "error")


if __name__ == "__main__":
    unittest.main()

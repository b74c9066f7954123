"""Checks and resolutions through the binary over several boots of a --root tree
(docs/DESIGN.md "Checks and resolutions"): a check reports an error item -> preview exits 1
naming the choose command -> the boot fails the phase and falls back -> `choose` -> the next
boot runs the resolution as migration CHECK.RESOLUTION -> status shows the item resolved ->
booting the old generation undoes it."""

import json
import os
import subprocess
import time
import unittest

from harness import BOOTSTATE, Machine, command_step

# The check: the "data" under the root is of version 15, the generation's server is 14. It is
# run directly (its #! line), never through a shell by bootstate.
CHECK = """#!/bin/sh
version=$(cat "$BOOTSTATE_ROOT/var/lib/app/PG_VERSION" 2>/dev/null) || exit 0
[ "$version" = 14 ] && exit 0
printf '{"id": "app-%s-to-14", "severity": "error", "message": "data of version %s, server 14", "resolutions": ["dump-restore", "keep-going"], "default": "dump-restore"}\\n' "$version" "$version"
"""
# The resolution (and its undo): sets the data's version, logging each run.
SET_VERSION = """#!/bin/sh
echo "$1" > "$BOOTSTATE_ROOT/var/lib/app/PG_VERSION"
echo "$BOOTSTATE_MIGRATION $1" >> "$BOOTSTATE_ROOT/var/lib/app/runs"
"""


class ChecksTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        self.check = self.script("check", CHECK)
        self.set_version = self.script("set-version", SET_VERSION)
        os.makedirs(self.machine.path("/var/lib/app"))
        with open(self.machine.path("/var/lib/app/PG_VERSION"), "w") as file:
            file.write("15\n")
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        self.assertEqual(self.machine.boot(), 0)

    def script(self, name, text):
        return self.machine.script(name, text)

    def checks(self, check_argv=None, resolutions=None):
        if resolutions is None:
            resolutions = [
                {"id": "dump-restore", "description": "dump with 15, restore into 14",
                 "steps": [command_step("restore", [self.set_version, "14"])],
                 "undo": [command_step("back", [self.set_version, "15"])]},
                {"id": "keep-going", "description": "do nothing",
                 "steps": [command_step("nothing", ["/bin/true"])]},
            ]
        return [{"id": "app", "description": "data version", "phase": "post-activation",
                 "command": check_argv or [self.check], "timeout": 20,
                 "resolutions": resolutions}]

    def data_version(self):
        return self.machine.lines("/var/lib/app/PG_VERSION")

    def item(self, document, item_id):
        for item in document["items"]:
            if item["id"] == item_id:
                return item
        raise AssertionError("no item %s in %s" % (item_id, document["items"]))

    def test_a_failed_check_is_retried_after_the_fallback_with_the_printed_command(self):
        # Before, a check that failed (a `check-failed` item, no resolution) left its
        # generation failed for good: `retry` knew migrations only.
        machine = self.machine
        flaky = self.script("flaky", '#!/bin/sh\n[ -e "$BOOTSTATE_ROOT/var/lib/app/ready" ] || exit 3\n')
        machine.write_plan("g2", [], checks=self.checks(check_argv=[flaky]))
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 1)
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(self.item(machine.status(), "check-failed")["state"], "open")
        command = "bootstate retry --plan %s app" % machine.toplevel("g2")
        self.assertIn(command, machine.bootstate("status").stdout)
        # Nothing to retry while the generation has no failed attempt of its own: refused.
        self.assertEqual(machine.bootstate("retry", "app").returncode, 2)

        open(machine.path("/var/lib/app/ready"), "w").close()
        retried = machine.bootstate(*command.split()[1:])
        self.assertEqual(retried.returncode, 0, retried.stdout + retried.stderr)
        self.assertIn("its next boot starts a new attempt", retried.stdout)
        # The same answer again: the same outcome.
        self.assertEqual(machine.bootstate(*command.split()[1:]).returncode, 0)
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0, machine.status())
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        self.assertNotIn("check-failed", [item["id"] for item in status["items"]])

    def test_both_generations_check_and_the_older_one_undoes_the_newer_ones_resolution(self):
        # Like PostgreSQL: every generation has the version check, against its own server.
        # Before, booting g1 again ran g1's check before undoing g2's resolution: it saw the data
        # that undo was about to convert back, failed the boot, and the undo never ran; preview
        # and the pre-switch check refused to go back at all.
        machine = self.machine
        versioned = self.script("versioned", """#!/bin/sh
version=$(cat "$BOOTSTATE_ROOT/var/lib/app/PG_VERSION")
[ "$version" = "$1" ] && exit 0
printf '{"id": "app-%s-to-%s", "severity": "error", "message": "data %s, server %s", "resolutions": ["dump-restore"]}\\n' "$version" "$1" "$version" "$1"
""")
        g1 = machine.write_plan("g1", [], checks=self.checks(check_argv=[versioned, "15"]))
        g2 = machine.write_plan("g2", [], checks=self.checks(check_argv=[versioned, "14"]))
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(machine.bootstate("preview", g1).returncode, 0)
        self.assertEqual(machine.bootstate("choose", "--plan", g2, "app-15-to-14",
                                           "dump-restore").returncode, 0)
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0, machine.status())
        self.assertEqual(self.data_version(), ["14"])

        preview = machine.bootstate("--json", "preview", g1)
        self.assertEqual(preview.returncode, 0, preview.stdout)
        document = json.loads(preview.stdout)
        self.assertFalse(document["blocked"])
        self.assertTrue(any("runs again after it" in note for note in document["notes"]),
                        document["notes"])
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0, machine.status())
        self.assertEqual(self.data_version(), ["15"])
        self.assertEqual(machine.migration("app.dump-restore")["state"], "undone")
        self.assertEqual(machine.status()["attempt"]["state"], "complete")

    def test_the_command_preview_prints_works_as_printed(self):
        # Before, preview of a generation not booted yet printed `bootstate choose ITEM RES`,
        # which refused with "unknown item": the item is in no state until that generation boots.
        machine = self.machine
        g2 = machine.write_plan("g2", [], checks=self.checks())
        preview = machine.bootstate("--json", "preview", g2)
        blocker = json.loads(preview.stdout)["blockers"][0]
        printed = blocker.split("`")[1]
        self.assertEqual(printed, "bootstate choose --plan %s app-15-to-14 dump-restore" % g2)
        chosen = machine.bootstate(*printed.split()[1:])
        self.assertEqual(chosen.returncode, 0, chosen.stderr)
        self.assertEqual(machine.bootstate("--json", "preview", g2).returncode, 0)

    def test_predicted_blocked_chosen_resolved_and_undone(self):
        machine = self.machine
        g2 = machine.write_plan("g2", [], checks=self.checks())

        preview = machine.bootstate("preview", g2)
        self.assertEqual(preview.returncode, 1, preview.stdout + preview.stderr)
        # g2 is not booted, so its items are in no state: the command names its plan, and it
        # is the command that works as printed (tested in test_the_previewed_command_works).
        self.assertIn("bootstate choose --plan %s app-15-to-14 dump-restore" % g2, preview.stdout)
        self.assertIn("Errors", preview.stdout)
        document = json.loads(machine.bootstate("--json", "preview", g2).stdout)
        item = self.item(document, "app-15-to-14")
        self.assertEqual(item["state"], "open")
        self.assertEqual(item["check"], "app")
        self.assertEqual(item["severity"], "error")
        self.assertEqual(item["default"], "dump-restore")
        self.assertIsNone(item["chosen"])
        self.assertEqual([r["id"] for r in item["resolutions"]], ["dump-restore", "keep-going"])
        self.assertEqual(item["resolutions"][0]["description"], "dump with 15, restore into 14")
        self.assertTrue(document["blocked"])

        # The boot of g2 fails in post-activation: the fallback is arranged.
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 1)
        self.assertEqual(self.data_version(), ["15"])
        # Fell back: g1 boots, and its status shows g2's item with its resolutions.
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        status = machine.status()
        item = self.item(status, "app-15-to-14")
        self.assertEqual(item["state"], "open")
        self.assertEqual(item["generation"], g2)
        self.assertEqual(len(item["resolutions"]), 2)
        text = machine.bootstate("status").stdout
        self.assertIn("bootstate choose app-15-to-14 dump-restore", text)
        metrics = machine.bootstate("metrics").stdout
        self.assertIn("\nbootstate_open_error_items 1\n", metrics)

        # Choices that do not apply change nothing (exit 2).
        before = machine.store_bytes()
        for arguments, words in ((("nope", "dump-restore"), "unknown item \"nope\""),
                                 (("app-15-to-14", "nuke"), "has no resolution \"nuke\""),
                                 (("nope", "--clear"), "no choice to clear")):
            result = machine.bootstate("choose", *arguments)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(words, result.stderr)
        self.assertEqual(machine.store_bytes(), before)

        chosen = machine.bootstate("choose", "app-15-to-14", "dump-restore")
        self.assertEqual(chosen.returncode, 0, chosen.stderr)
        self.assertIn("app.dump-restore", chosen.stdout)
        self.assertEqual(self.item(machine.status(), "app-15-to-14")["state"], "chosen")
        # Idempotent.
        self.assertEqual(machine.bootstate("choose", "app-15-to-14", "dump-restore").returncode, 0)

        # The next boot of g2 runs the resolution as a migration and completes.
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0, machine.status())
        self.assertEqual(self.data_version(), ["14"])
        status = machine.status()
        self.assertEqual(status["attempt"]["state"], "complete")
        item = self.item(status, "app-15-to-14")
        self.assertEqual(item["state"], "resolved")
        self.assertEqual(item["chosen"], "dump-restore")
        self.assertEqual(machine.migration("app.dump-restore")["state"], "applied")
        self.assertEqual(machine.lines("/var/lib/app/runs"), ["app.dump-restore 14"])

        # Booting g1 again undoes it, like any stale migration.
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(self.data_version(), ["15"])
        self.assertEqual(machine.migration("app.dump-restore")["state"], "undone")
        # g2 completed before g1 came back: its item and choice are not g1's business any more
        # (before, they stayed in every status until 256 newer items pushed them out).
        status = machine.status()
        self.assertEqual(status["items"], [])
        self.assertNotIn("Items:", machine.bootstate("status").stdout)

    def test_choose_ahead_with_plan_runs_at_the_first_boot(self):
        machine = self.machine
        g2 = machine.write_plan("g2", [], checks=self.checks())
        plan = g2 + "/bootstate/plan.json"
        result = machine.bootstate("--plan", plan, "choose", "app-15-to-14", "dump-restore")
        self.assertEqual(result.returncode, 0, result.stderr)
        preview = machine.bootstate("preview", g2)
        self.assertEqual(preview.returncode, 0, preview.stdout)
        self.assertIn("app.dump-restore", preview.stdout)
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(self.data_version(), ["14"])

    def test_a_resolution_gone_from_the_plan_cannot_be_chosen(self):
        machine = self.machine
        g2 = machine.write_plan("g2", [], checks=self.checks())
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 1)
        # The plan changes (same generation path): its check no longer offers keep-going.
        changed = self.checks(resolutions=self.checks()[0]["resolutions"][:1])
        machine.write_plan("g2", [], checks=changed)
        # The recorded item still lists keep-going, the plan does not.
        before = machine.store_bytes()
        result = machine.bootstate("--plan", g2 + "/bootstate/plan.json", "choose",
                                   "app-15-to-14", "keep-going")
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("no longer in the plan", result.stderr)
        self.assertEqual(machine.store_bytes(), before)

    def test_a_broken_check_blocks_and_never_passes(self):
        machine = self.machine
        for name, body in (("fails", "#!/bin/sh\nexit 3\n"),
                           ("garbage", "#!/bin/sh\necho 'everything is fine'\n"),
                           ("bad-id", "#!/bin/sh\necho '{\"id\":\"A B\",\"severity\":\"warning\",\"message\":\"m\"}'\n"),
                           ("undeclared", "#!/bin/sh\necho '{\"id\":\"x\",\"severity\":\"warning\",\"message\":\"m\",\"resolutions\":[\"rm-rf\"]}'\n"),
                           ("crashes", "#!/bin/sh\nkill -SEGV $$\n"),
                           ("binary", "#!/bin/sh\nprintf '\\377\\376\\000{}\\n'\n")):
            script = self.script(name, body)
            g = machine.write_plan("g-" + name, [], checks=self.checks(check_argv=[script]))
            preview = machine.bootstate("--json", "preview", g)
            self.assertEqual(preview.returncode, 1, name)
            item = json.loads(preview.stdout)["items"][0]
            self.assertEqual((item["id"], item["severity"]), ("check-failed", "error"), name)
            machine.boot_into("g-" + name)
            machine.reboot()
            self.assertEqual(machine.boot(), 1, name)
            machine.boot_into("g1")
            machine.reboot()
            self.assertEqual(machine.boot(), 0, name)

    def test_choose_racing_a_run_waits_for_it_and_is_not_overwritten(self):
        machine = self.machine
        warn = self.script("warn", "#!/bin/sh\necho '{\"id\":\"w\",\"severity\":\"warning\","
                                   "\"message\":\"m\",\"resolutions\":[\"keep-going\"]}'\n")
        slow = {"id": "slow", "policy": "required",
                "steps": [command_step("sleep", ["/bin/sleep", "2"])]}
        machine.write_plan("g2", [slow], checks=self.checks(check_argv=[warn]))
        machine.boot_into("g2")
        machine.reboot()
        for phase in ("initrd-pre-mount", "pre-switch-root"):
            self.assertEqual(machine.run(phase).returncode, 0)
        environment = dict(os.environ)
        environment.pop("BOOTSTATE_TEST_CRASH_AT", None)
        run = subprocess.Popen([BOOTSTATE, "--root", machine.root, "run", "--phase",
                                "post-activation"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)  # the check ran and recorded the item; the slow step holds the lock
        chosen = machine.bootstate("choose", "w", "keep-going")
        self.assertEqual(chosen.returncode, 0, chosen.stderr)
        self.assertIsNotNone(run.poll(), "choose returned before the run released the store")
        run.communicate()
        status = machine.status()
        item = self.item(status, "w")
        self.assertEqual((item["chosen"], item["state"]), ("keep-going", "chosen"))
        self.assertEqual(machine.migration("slow")["state"], "applied")
        # The next boot of g2 runs it.
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(self.item(machine.status(), "w")["state"], "resolved")

    def test_a_power_cut_at_every_commit_of_a_resolution_boot_completes_it(self):
        resolutions = [{"id": "dump-restore", "description": "idempotent restore",
                        "steps": [command_step("restore", [self.set_version, "14"],
                                               idempotent=True)]},
                       {"id": "keep-going", "steps": [command_step("nothing", ["/bin/true"])]}]
        for cut in range(1, 6):
            with self.subTest(cut=cut):
                machine = Machine()
                self.addCleanup(machine.cleanup)
                self.machine = machine
                os.makedirs(machine.path("/var/lib/app"))
                with open(machine.path("/var/lib/app/PG_VERSION"), "w") as file:
                    file.write("15\n")
                check = self.script("check", CHECK)
                self.set_version = self.script("set-version", SET_VERSION)
                checks = self.checks(check_argv=[check], resolutions=resolutions)
                machine.write_plan("g1", [])
                machine.boot_into("g1")
                self.assertEqual(machine.boot(), 0)
                g2 = machine.write_plan("g2", [], checks=checks)
                chosen = machine.bootstate("--plan", g2 + "/bootstate/plan.json", "choose",
                                           "app-15-to-14", "dump-restore")
                self.assertEqual(chosen.returncode, 0, chosen.stderr)
                machine.boot_into("g2")
                machine.reboot()
                for phase in ("initrd-pre-mount", "pre-switch-root"):
                    self.assertEqual(machine.run(phase).returncode, 0)
                machine.run("post-activation", env={"BOOTSTATE_TEST_CRASH_AT": str(cut)})
                machine.reboot()
                self.assertEqual(machine.boot(), 0, machine.status())
                self.assertEqual(machine.migration("app.dump-restore")["state"], "applied")
                self.assertEqual(self.data_version(), ["14"])
                self.assertEqual(self.item(machine.status(), "app-15-to-14")["state"],
                                 "resolved")

    def test_a_plan_without_checks_never_runs_or_records_any(self):
        status = self.machine.status()
        self.assertEqual(status["items"], [])
        payload = b"".join(self.machine.store_bytes().values())
        self.assertNotIn(b'"items"', payload)
        self.assertNotIn(b'"choices"', payload)



SOURCE = os.environ.get("BOOTSTATE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
# A stand-in for the configured server: answers `postgres --version` as PostgreSQL 15 only when
# it runs as the postgres user, so the item it leads to tells who ran the check.
FAKE_POSTGRES = """#!/bin/sh
[ "$(id -un)" = postgres ] || { echo "runs as $(id -un), not postgres" >&2; exit 1; }
echo "postgres (PostgreSQL) 15.4"
"""


def has_postgres_user():
    try:
        import pwd
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


@unittest.skipIf(subprocess.run(["sh", "-c", "command -v nix-instantiate"],
                                capture_output=True).returncode != 0,
                 "nix-instantiate is not installed (it renders nixos/postgresql/check.nix)")
@unittest.skipIf(os.geteuid() != 0 or not has_postgres_user(),
                 "needs root and a postgres user (Debian's postgresql package has one)")
class PostgresqlDeclarationTest(unittest.TestCase):
    """nixos/postgresql/check.nix rendered by nix-instantiate, as the NixOS module renders it into
    the plan: the plan accepts its check (`user = "postgres"`), and the check runs as postgres."""

    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        # In the tree (the check reads --data-dir below BOOTSTATE_ROOT), reachable by postgres.
        self.outside = self.machine.path("/outside")
        os.makedirs(self.outside + "/bin")
        os.makedirs(self.outside + "/data")
        for directory in (self.machine.root, self.outside, self.outside + "/bin"):
            os.chmod(directory, 0o755)
        with open(self.outside + "/data/PG_VERSION", "w") as file:
            file.write("14\n")
        with open(os.path.join(SOURCE, "nixos/postgresql/bootstate-pg-check.sh")) as file:
            check_script = file.read()
        for name, text in (("postgres", FAKE_POSTGRES), ("bootstate-pg-check", check_script)):
            with open(self.outside + "/bin/" + name, "w") as file:
                file.write(text)
            os.chmod(self.outside + "/bin/" + name, 0o755)
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        self.assertEqual(self.machine.boot(), 0)

    def declaration(self, **extra):
        argv = ["nix-instantiate", "--eval", "--strict", "--json",
                os.path.join(SOURCE, "nixos/postgresql/check.nix"),
                "--argstr", "checkExe", self.outside + "/bin/bootstate-pg-check",
                "--argstr", "resolveExe", "/run/bootstate-pg-resolve",
                "--argstr", "dataDir", "/outside/data",  # in the tree (BOOTSTATE_ROOT)
                "--argstr", "serverBindir", self.outside + "/bin"]
        for key, value in extra.items():
            argv += ["--argstr", key, value]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_the_declared_check_is_accepted_and_runs_as_postgres(self):
        declaration = self.declaration()
        self.assertEqual(declaration["user"], "postgres")
        g2 = self.machine.write_plan("g2", [], checks=[declaration])
        preview = self.machine.bootstate("--json", "preview", g2)
        self.assertEqual(preview.returncode, 1, preview.stdout + preview.stderr)  # a blocker
        items = json.loads(preview.stdout)["items"]
        self.assertEqual([item["id"] for item in items], ["postgresql-upgrade-14-to-15"], items)
        self.assertEqual([r["id"] for r in items[0]["resolutions"]], ["pg-upgrade", "dump-restore"])

    def test_the_same_check_as_root_is_told_apart(self):
        g2 = self.machine.write_plan("g2", [], checks=[self.declaration(user="root")])
        preview = self.machine.bootstate("--json", "preview", g2)
        items = json.loads(preview.stdout)["items"]
        self.assertEqual(len(items), 1, items)
        self.assertNotEqual(items[0]["id"], "postgresql-upgrade-14-to-15")
        self.assertEqual(items[0]["severity"], "error")  # the check failed: never a pass
        self.assertIn("exit status 1", items[0]["message"])


if __name__ == "__main__":
    unittest.main()

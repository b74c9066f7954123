"""Command steps as a user (docs/DESIGN.md "Steps as a user", issue 15 item 3) through the real
binary: uid, gid, supplementary groups, HOME/USER, a work directory the user owns, and a user
that does not exist failing the step with its name. Needs root (setuid); CI runs as root.
"""

import os
import pwd
import unittest

from harness import Machine, command_step

NEEDS_ROOT = os.geteuid() != 0


def report_step(step_id, **extra):
    """A step that writes who it runs as into its work directory (as that user)."""
    script = ('{ id -u; id -g; id -G; echo "$HOME" "${USER-}"; } > "$BOOTSTATE_WORK_DIR/who"')
    return command_step(step_id, ["/bin/sh", "-c", script], **extra)


class StepsAsAUser(unittest.TestCase):
    def setUp(self):
        if NEEDS_ROOT:
            if os.environ.get("CI"):
                self.fail("needs root to change uid (CI runs as root)")
            self.skipTest("needs root to change uid")
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        # mkdtemp made the tree 0700: the step's user must reach its work directory, as it can
        # below /var/lib/bootstate (0755) on a real machine.
        os.chmod(self.machine.root, 0o755)

    def boot(self, steps):
        m = self.machine
        m.write_plan("gen1", [{"id": "m", "policy": "required", "steps": steps}])
        m.boot_into("gen1")
        return m.boot()

    def who(self, step_id):
        path = self.machine.path("/var/lib/bootstate/work/m/%s/who" % step_id)
        with open(path) as file:
            return file.read().splitlines(), os.stat(os.path.dirname(path))

    def test_a_named_user_gets_its_ids_groups_home_and_the_work_directory(self):
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(self.boot([report_step("s", user="nobody")]), 0)
        lines, work = self.who("s")
        self.assertEqual(lines[0], str(nobody.pw_uid))
        self.assertEqual(lines[1], str(nobody.pw_gid))
        self.assertEqual(lines[2].split(), [str(nobody.pw_gid)])  # no root groups left
        self.assertEqual(lines[3], "%s nobody" % nobody.pw_dir)
        self.assertEqual((work.st_uid, work.st_gid), (nobody.pw_uid, nobody.pw_gid))

    def test_numbers_without_an_account_entry_and_a_group_by_name(self):
        self.assertEqual(self.boot([report_step("n", user="23456"),
                                    report_step("g", user="23456", group="nogroup"),
                                    report_step("r", group="12")]), 0)
        lines, work = self.who("n")
        self.assertEqual(lines[:3], ["23456", "23456", "23456"])
        self.assertEqual((work.st_uid, work.st_gid), (23456, 23456))
        lines, _ = self.who("g")
        self.assertEqual(lines[:2], ["23456", "65534"])
        lines, _ = self.who("r")  # group only: root's uid, that gid, none of root's groups
        self.assertEqual(lines[:3], ["0", "12", "12"])

    def test_a_user_that_does_not_exist_fails_the_step_naming_it(self):
        self.assertEqual(self.boot([report_step("s", user="no-such-user-bs")]), 1)
        step = self.machine.migration("m")["steps"][0]
        self.assertEqual(step["state"], "failed")
        self.assertIn('user "no-such-user-bs" does not exist', step["message"])
        self.assertFalse(os.path.exists(self.machine.path("/var/lib/bootstate/work/m/s/who")))

    def test_a_name_in_an_initrd_phase_is_refused_by_the_plan(self):
        m = self.machine
        m.write_plan("gen1", [{"id": "m", "policy": "required",
                               "steps": [report_step("s", user="postgres",
                                                     phase="initrd-pre-mount")]}])
        m.boot_into("gen1")
        result = m.bootstate("preview", m.toplevel("gen1"))  # the initrd reads its own copy
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("migrations[0].steps[0].user: \"postgres\": in phase initrd-pre-mount only "
                      "a numeric id is allowed", result.stderr)


# A check that reports who it runs as, as a warning item (the boot goes on), in the item's
# message: uid, gid, groups, HOME, USER.
WHO_CHECK = ('printf \'{"id": "who", "severity": "warning", "message": "%s", '
             '"resolutions": ["r"]}\\n\' "$(echo $(id -u) $(id -g) / $(id -G) / $HOME ${USER-})"')


class ChecksAsAUser(unittest.TestCase):
    """A check's `user`/`group` (docs/DESIGN.md "Checks run as a user"), and a resolution's
    steps as theirs (a resolution is a migration)."""

    def setUp(self):
        StepsAsAUser.setUp(self)

    def boot_with_check(self, **account):
        m = self.machine
        check = {"id": "c", "phase": "post-activation", "command": ["/bin/sh", "-c", WHO_CHECK],
                 "resolutions": [{"id": "r", "steps": [report_step("s", user="nobody")]}]}
        check.update(account)
        m.write_plan("gen1", [], checks=[check])
        m.boot_into("gen1")
        return m.boot()

    def item(self):
        items = self.machine.status()["items"]
        self.assertEqual(len(items), 1, items)
        return items[0]

    def test_a_check_runs_with_the_uid_gid_groups_and_home_asked_for(self):
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(self.boot_with_check(user="nobody"), 0)
        self.assertEqual(self.item()["message"], "%d %d / %d / %s nobody" % (
            nobody.pw_uid, nobody.pw_gid, nobody.pw_gid, nobody.pw_dir))

    def test_a_check_with_numbers_and_a_group(self):
        self.assertEqual(self.boot_with_check(user="23456", group="12"), 0)
        self.assertEqual(self.item()["message"], "23456 12 / 12 / /")  # HOME=/ and no USER: no entry

    def test_a_check_as_root_by_default(self):
        self.assertEqual(self.boot_with_check(), 0)
        self.assertTrue(self.item()["message"].startswith("0 0 / "), self.item()["message"])

    def test_a_check_whose_user_does_not_exist_is_an_error_item_naming_it(self):
        self.assertEqual(self.boot_with_check(user="no-such-user-bs"), 1)
        item = self.item()
        self.assertEqual(item["severity"], "error")
        self.assertIn('user "no-such-user-bs" does not exist', item["message"])

    def test_a_chosen_resolutions_step_runs_as_its_user(self):
        m = self.machine
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(self.boot_with_check(user="nobody"), 0)
        self.assertEqual(m.bootstate("choose", "who", "r").returncode, 0)
        m.reboot()
        self.assertEqual(m.boot(), 0)
        path = m.path("/var/lib/bootstate/work/c.r/s/who")
        with open(path) as file:
            lines = file.read().splitlines()
        self.assertEqual(lines[:2], [str(nobody.pw_uid), str(nobody.pw_gid)])
        self.assertEqual(os.stat(os.path.dirname(path)).st_uid, nobody.pw_uid)

if __name__ == "__main__":
    unittest.main()

"""The shell completions: the bash one is run in bash (COMP_WORDS/COMP_CWORD, then COMPREPLY);
all three must offer every command and option of the binary's own table (`--json help`)."""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import BOOTSTATE, Machine, command_step  # noqa: E402

SOURCE = os.environ.get("BOOTSTATE_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
COMPLETIONS = os.path.join(SOURCE, "completions")


def command_table():
    result = subprocess.run([BOOTSTATE, "--json", "help"], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def complete(words, cword=None):
    """COMPREPLY of _bootstate for the command line `words` (the last one being completed)."""
    cword = len(words) - 1 if cword is None else cword
    script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=%d; _bootstate; ' \
             'printf "%%s\\n" "${COMPREPLY[@]}"' % cword
    environment = dict(os.environ)
    environment["PATH"] = os.path.dirname(os.path.abspath(BOOTSTATE)) + ":" + environment["PATH"]
    result = subprocess.run(["bash", "-c", script, "bash",
                             os.path.join(COMPLETIONS, "bootstate.bash")] + list(words),
                            capture_output=True, text=True, env=environment, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def machine_with_items(test):
    """A --root tree whose status has items (docs/DESIGN.md "Checks and resolutions"): g2's
    checks report an error item with two resolutions, and two warnings with the same id from
    two checks (which `choose` names CHECK/ID); g2's boot fails on the error and falls back."""
    machine = Machine()
    test.addCleanup(machine.cleanup)

    def check(check_id, item_id, severity, resolutions):
        line = json.dumps({"id": item_id, "severity": severity, "message": "about " + item_id,
                           "resolutions": resolutions})
        return {"id": check_id, "phase": "post-activation", "command": ["/bin/echo", line],
                "resolutions": [{"id": r, "steps": [command_step("s", ["/bin/true"])]}
                                for r in resolutions]}

    machine.write_plan("g1", [])
    machine.boot_into("g1")
    test.assertEqual(machine.boot(), 0)
    machine.write_plan("g2", [], checks=[
        check("app", "app-15-to-14", "error", ["dump-restore", "keep-going"]),
        check("db", "shared", "warning", ["fix"]),
        check("disk", "shared", "warning", ["grow"])])
    machine.boot_into("g2")
    machine.reboot()
    test.assertEqual(machine.boot(), 1)  # the open error item fails the boot
    return machine


def machine_with_a_generation_not_booted(test):
    """g1 booted, with no items; g2 written but never booted, its check reporting an error item
    `pg-15-to-14` with two resolutions: only `preview` of g2 knows that item."""
    machine = Machine()
    test.addCleanup(machine.cleanup)
    machine.write_plan("g1", [])
    machine.boot_into("g1")
    test.assertEqual(machine.boot(), 0)
    line = json.dumps({"id": "pg-15-to-14", "severity": "error", "message": "data is newer",
                       "resolutions": ["dump-restore", "restore-backup"]})
    g2 = machine.write_plan("g2", [], checks=[{
        "id": "pg", "phase": "post-activation", "command": ["/bin/echo", line],
        "resolutions": [{"id": r, "steps": [command_step("s", ["/bin/true"])]}
                        for r in ("dump-restore", "restore-backup")]}])
    return machine, g2


class BashCompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = command_table()

    def test_commands(self):
        names = [command["name"] for command in self.table["commands"]]
        self.assertEqual(sorted(complete(["bootstate", ""])), sorted(names))
        self.assertEqual(complete(["bootstate", "re"]), ["retry"])

    def test_options_of_each_command(self):
        global_names = {option["name"] for option in self.table["global_options"]}
        for command in self.table["commands"]:
            offered = set(complete(["bootstate", command["name"], "-"]))
            self.assertLessEqual(global_names, offered, command["name"])
            for option in command["options"]:
                self.assertIn(option["name"], offered, command["name"])
                if option["short"]:
                    self.assertIn(option["short"], offered, command["name"])

    def test_phases(self):
        self.assertEqual(complete(["bootstate", "run", "--phase", ""]), self.table["phases"])
        self.assertEqual(complete(["bootstate", "run", "--phase", "pre"]), ["pre-switch-root"])

    def test_ids_from_a_root_trees_status(self):
        machine = Machine()
        self.addCleanup(machine.cleanup)
        machine.write_plan("g1", [
            {"id": "app-data", "policy": "optional",
             "steps": [command_step("convert", ["/bin/true"])]},
            {"id": "firmware.x", "policy": "recommended",
             "steps": [command_step("flash", ["/bin/true"]), command_step("verify", ["/bin/true"])]}])
        machine.boot_into("g1")
        os.makedirs(machine.path("/boot/bootstate"), exist_ok=True)
        self.assertEqual(sorted(complete(["bootstate", "--root", machine.root, "accept", ""])),
                         ["app-data", "firmware.x"])
        self.assertEqual(complete(["bootstate", "--root", machine.root, "retry", "fi"]),
                         ["firmware.x"])
        self.assertEqual(sorted(complete(["bootstate", "--root", machine.root, "log", "firmware.x/"])),
                         ["firmware.x/flash", "firmware.x/verify"])
        # After a boot, the attempt numbers of history complete --attempt.
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(complete(["bootstate", "--root", machine.root, "log", "--attempt", ""]),
                         ["1"])

    def test_choose_offers_items_then_their_resolutions(self):
        machine = machine_with_items(self)
        root = ["bootstate", "--root", machine.root]
        self.assertEqual(complete(root + ["choose", ""]),
                         ["app-15-to-14", "db/shared", "disk/shared"])
        self.assertEqual(complete(root + ["choose", "d"]), ["db/shared", "disk/shared"])
        self.assertEqual(complete(root + ["choose", "app-15-to-14", ""]),
                         ["dump-restore", "keep-going", "--clear"])
        self.assertEqual(complete(root + ["choose", "app-15-to-14", "k"]), ["keep-going"])
        self.assertEqual(complete(root + ["choose", "disk/shared", ""]), ["grow", "--clear"])
        self.assertEqual(complete(root + ["choose", "app-15-to-14", "keep-going", ""]), [])
        # A chosen item is still offered (to change or --clear the choice); a resolved one is not.
        self.assertEqual(machine.bootstate("choose", "db/shared", "fix").returncode, 0)
        self.assertIn("db/shared", complete(root + ["choose", ""]))
        machine.boot_into("g1")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)
        self.assertEqual(machine.bootstate("choose", "app-15-to-14", "keep-going").returncode, 0)
        machine.boot_into("g2")
        machine.reboot()
        self.assertEqual(machine.boot(), 0)  # both resolutions run: the items are resolved
        self.assertEqual(complete(root + ["choose", ""]), ["disk/shared"])

    def test_choose_plan_offers_the_items_of_a_generation_not_booted_yet(self):
        # issue #16: `choose --plan GEN ITEM RES` is what preview and the pre-switch check print
        # for a generation before it is booted; its items are in no state yet, so they come
        # from GEN's checks (preview), not from status.
        machine, g2 = machine_with_a_generation_not_booted(self)
        root = ["bootstate", "--root", machine.root]
        self.assertEqual(complete(root + ["choose", ""]), [])  # g1 has no items
        self.assertEqual(complete(root + ["choose", "--plan", g2, ""]), ["pg-15-to-14"])
        self.assertEqual(complete(root + ["choose", "--plan", g2, "pg-15-to-14", ""]),
                         ["dump-restore", "restore-backup", "--clear"])
        # The command completed that way works as completed.
        result = machine.bootstate("choose", "--plan", g2, "pg-15-to-14", "dump-restore")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_files_for_paths(self):
        offered = complete(["bootstate", "preview", os.path.join(COMPLETIONS, "bootstate.b")])
        self.assertEqual(offered, [os.path.join(COMPLETIONS, "bootstate.bash")])


@unittest.skipIf(shutil.which("fish") is None, "fish is not installed (scripts/install-deps.sh)")
class FishCompletionTest(unittest.TestCase):
    """fish computes completions for a command line itself (`complete -C`)."""

    def complete(self, line):
        environment = dict(os.environ)
        environment["PATH"] = os.path.dirname(os.path.abspath(BOOTSTATE)) + ":" + environment["PATH"]
        result = subprocess.run(["fish", "--no-config", "-c", 'source $argv[1]; complete -C $argv[2]',
                                 os.path.join(COMPLETIONS, "bootstate.fish"), line],
                                capture_output=True, text=True, env=environment, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return sorted(line.split("\t")[0] for line in result.stdout.splitlines())

    def test_commands_phases_and_ids(self):
        names = sorted(command["name"] for command in command_table()["commands"])
        self.assertEqual(self.complete("bootstate "), names)
        self.assertEqual(self.complete("bootstate run --phase "),
                         sorted(command_table()["phases"]))
        self.assertIn("--follow", self.complete("bootstate log --"))
        machine = Machine()
        self.addCleanup(machine.cleanup)
        machine.write_plan("g1", [{"id": "app-data", "policy": "optional",
                                   "steps": [command_step("convert", ["/bin/true"])]}])
        machine.boot_into("g1")
        os.makedirs(machine.path("/boot/bootstate"), exist_ok=True)
        self.assertEqual(self.complete("bootstate --root %s accept " % machine.root), ["app-data"])
        self.assertEqual(self.complete("bootstate --root %s log " % machine.root),
                         ["app-data", "app-data/convert"])

    def test_choose_offers_items_then_their_resolutions(self):
        machine = machine_with_items(self)
        line = "bootstate --root %s choose " % machine.root
        self.assertEqual(self.complete(line), ["app-15-to-14", "db/shared", "disk/shared"])
        self.assertEqual(self.complete(line + "app-15-to-14 "),
                         ["--clear", "dump-restore", "keep-going"])
        self.assertEqual(self.complete(line + "db/shared "), ["--clear", "fix"])

    def test_choose_plan_offers_the_items_of_a_generation_not_booted_yet(self):
        machine, g2 = machine_with_a_generation_not_booted(self)
        self.assertEqual(self.complete("bootstate --root %s choose " % machine.root), [])
        line = "bootstate --root %s choose --plan %s " % (machine.root, g2)
        self.assertEqual(self.complete(line), ["pg-15-to-14"])
        self.assertEqual(self.complete(line + "pg-15-to-14 "),
                         ["--clear", "dump-restore", "restore-backup"])


@unittest.skipIf(shutil.which("zsh") is None, "zsh is not installed (scripts/install-deps.sh)")
class ZshItemsTest(unittest.TestCase):
    """zsh's completion system needs a terminal; its helper that reads items[] runs in zsh here
    (the file without its last line, which starts the completion)."""

    def items(self, root, item, extra=()):
        environment = dict(os.environ)
        environment["PATH"] = os.path.dirname(os.path.abspath(BOOTSTATE)) + ":" + environment["PATH"]
        script = 'source <(sed \\$d "$1"); _bootstate_items "$2" --root "${@:3}"'
        result = subprocess.run(["zsh", "-f", "-c", script, "zsh",
                                 os.path.join(COMPLETIONS, "_bootstate"), item, root] + list(extra),
                                capture_output=True, text=True, env=environment, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.splitlines()

    def test_items_and_resolutions(self):
        machine = machine_with_items(self)
        self.assertEqual(self.items(machine.root, ""), ["app-15-to-14", "db/shared", "disk/shared"])
        self.assertEqual(self.items(machine.root, "app-15-to-14"), ["dump-restore", "keep-going"])
        self.assertEqual(self.items(machine.root, "disk/shared"), ["grow"])

    def test_plan_items_of_a_generation_not_booted_yet(self):
        machine, g2 = machine_with_a_generation_not_booted(self)
        self.assertEqual(self.items(machine.root, ""), [])
        self.assertEqual(self.items(machine.root, "", ["--plan", g2]), ["pg-15-to-14"])
        self.assertEqual(self.items(machine.root, "pg-15-to-14", ["--plan", g2]),
                         ["dump-restore", "restore-backup"])


class EveryShellKnowsTheTableTest(unittest.TestCase):
    """zsh's completion is not run here (it needs a terminal); every file must still name every
    command, option and phase of the binary, and each is syntax-checked by its shell."""

    def test_names(self):
        table = command_table()
        names = [c["name"] for c in table["commands"]]
        names += [o["name"] for o in table["global_options"]] + table["phases"]
        names += [o["name"] for c in table["commands"] for o in c["options"]]
        for file_name in ("bootstate.bash", "_bootstate", "bootstate.fish"):
            with open(os.path.join(COMPLETIONS, file_name)) as file:
                text = file.read()
            for name in names:
                bare = name.lstrip("-")
                self.assertTrue(re.search(r"(^|[^a-z-])-{0,2}%s([^a-z-]|$)" % re.escape(bare), text),
                                "%s does not offer %s" % (file_name, name))

    def test_syntax(self):
        checks = [("bash", ["bash", "-n"], "bootstate.bash"),
                  ("zsh", ["zsh", "-n"], "_bootstate"),
                  ("fish", ["fish", "--no-execute"], "bootstate.fish")]
        for shell, argv, file_name in checks:
            with self.subTest(shell=shell):
                if shutil.which(shell) is None:
                    self.skipTest("%s is not installed (scripts/install-deps.sh)" % shell)
                result = subprocess.run(argv + [os.path.join(COMPLETIONS, file_name)],
                                        capture_output=True, text=True)
                self.assertEqual(result.returncode, 0, file_name + ": " + result.stderr)


if __name__ == "__main__":
    unittest.main()

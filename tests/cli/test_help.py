"""--help, COMMAND --help, --version and the man page, against the binary's own table of
commands and options (`bootstate --json help`, the table the parser accepts from)."""

import json
import os
import re
import shutil
import subprocess
import unittest

BOOTSTATE = os.environ.get("BOOTSTATE", "bootstate")
SOURCE = os.environ.get("BOOTSTATE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BOOTSTATE_BUILD", "")


def bootstate(*arguments):
    return subprocess.run([BOOTSTATE] + list(arguments), capture_output=True, text=True,
                          timeout=60)


def table():
    result = bootstate("--json", "help")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def all_options(commands_table):
    options = list(commands_table["global_options"])
    for command in commands_table["commands"]:
        options += command["options"]
    return options


def names_in(text, name):
    return re.search(r"(^|[^a-z-])%s([^a-z-]|$)" % re.escape(name), text) is not None


class HelpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = table()

    def test_table_is_not_empty(self):
        names = [command["name"] for command in self.table["commands"]]
        for expected in ("run", "status", "preview", "history", "log", "metrics", "accept",
                         "decline", "retry", "help", "version"):
            self.assertIn(expected, names)

    def test_global_help_names_every_command_and_option(self):
        result = bootstate("--help")
        self.assertEqual(result.returncode, 0)
        for command in self.table["commands"]:
            self.assertTrue(names_in(result.stdout, command["name"]), command["name"])
        for option in all_options(self.table):
            self.assertTrue(names_in(result.stdout, option["name"]), option["name"])
            if option["short"]:
                self.assertTrue(names_in(result.stdout, option["short"]), option["short"])

    def test_each_command_has_its_own_help(self):
        for command in self.table["commands"]:
            for form in ([command["name"], "--help"], [command["name"], "-h"],
                         ["help", command["name"]]):
                result = bootstate(*form)
                self.assertEqual(result.returncode, 0, form)
                self.assertTrue(result.stdout.startswith(
                    "Usage: bootstate [OPTIONS] %s" % command["name"]), result.stdout)
                for option in command["options"] + self.table["global_options"]:
                    self.assertTrue(names_in(result.stdout, option["name"]),
                                    "%s: %s" % (form, option["name"]))
        # A command's help also wins over what else is wrong on the line.
        self.assertEqual(bootstate("run", "--help").returncode, 0)
        self.assertEqual(bootstate("accept", "--help").returncode, 0)

    def test_command_options_belong_to_their_commands(self):
        for command in self.table["commands"]:
            for option in command["options"]:
                for other in self.table["commands"]:
                    if other["name"] in ("help", "version") or option in other["options"]:
                        continue
                    value = "post-activation" if option["name"] == "--phase" else "1"
                    argv = [other["name"], option["name"]] + ([value] if option["value"] else [])
                    result = bootstate(*argv)
                    self.assertEqual(result.returncode, 2, argv)
                    self.assertIn("%s is only for" % option["name"], result.stderr)

    def test_version(self):
        for argv in (["--version"], ["version"]):
            result = bootstate(*argv)
            self.assertEqual(result.returncode, 0)
            self.assertRegex(result.stdout, r"^bootstate \d+\.\d+\.\d+\n$")

    def test_bad_usage_exits_2(self):
        for argv, fragment in ((["frobnicate"], 'unknown command "frobnicate"'),
                               (["status", "--frob"], 'unknown option "--frob"'),
                               (["help", "frob"], 'help: unknown command "frob"'),
                               (["status", "extra"], 'status takes no argument "extra"'),
                               (["log", "--attempt"], "--attempt needs a value"),
                               (["--json=yes", "status"], "--json takes no value"),
                               ([], "no command given")):
            result = bootstate(*argv)
            self.assertEqual(result.returncode, 2, argv)
            self.assertIn(fragment, result.stderr)


class ManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = table()
        with open(os.path.join(SOURCE, "man", "bootstate.8.scd")) as file:
            cls.source = file.read()

    def rendered(self):
        page = os.path.join(BUILD, "man", "bootstate.8")
        if not BUILD or not os.path.exists(page):
            self.skipTest("no rendered page (build the bootstate-man target)")
        if shutil.which("man") is None:
            self.skipTest("man is not installed")
        environment = dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="")
        result = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                                env=environment, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return re.sub(r".\x08", "", result.stdout).replace("\u2010", "-")

    def test_source_names_every_command_and_option_in_bold(self):
        for command in self.table["commands"]:
            self.assertIn("*%s*" % command["name"], self.source, command["name"])
        for option in all_options(self.table):
            self.assertIn("*%s*" % option["name"], self.source, option["name"])
            if option["short"]:
                self.assertIn("*%s*" % option["short"], self.source, option["short"])
        for phase in self.table["phases"]:
            self.assertIn("*%s*" % phase, self.source, phase)

    def test_every_command_and_option_has_its_own_entry(self):
        # An option mentioned only in a synopsis (its entry deleted) passed the test above:
        # each must start a definition line of its own, "*-f*, *--follow*" or "*--root* _DIR_",
        # followed by its tab-indented description. Failed before with --attempt's entry gone.
        def entry(head):
            match = re.search(r"^%s\n\t\S" % head, self.source, re.MULTILINE)
            self.assertIsNotNone(match, "no entry of its own in man/bootstate.8.scd: " + head)

        for option in all_options(self.table):
            head = re.escape("*%s*" % option["name"])
            if option["short"]:
                head = re.escape("*%s*, " % option["short"]) + head
            if option["value"]:
                head += re.escape(" _%s_" % option["value"])
            entry(head)
        for command in self.table["commands"]:
            entry(re.escape("*%s*" % command["name"]) + r"( .*)?")

    def test_rendered_page_names_every_command_and_option(self):
        text = self.rendered()
        self.assertIn("bootstate - declarative", text)
        for command in self.table["commands"]:
            self.assertTrue(names_in(text, command["name"]), command["name"])
        for option in all_options(self.table):
            self.assertTrue(names_in(text, option["name"]), option["name"])


if __name__ == "__main__":
    unittest.main()

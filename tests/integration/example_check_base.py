"""What the example-check tests (test_example_checks.py) share: the checks' programs, their
plan entries rendered by nixos/checks/checks.nix, and a --root machine with helpers."""

import json
import os
import re
import subprocess
import unittest

from harness import Machine

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.normpath(os.path.join(HERE, "..", "..", "nixos", "checks"))
ACCOUNT = os.path.join(CHECKS, "bootstate-check-account.sh")
KERNEL = os.path.join(CHECKS, "bootstate-check-kernel.sh")
FREE_SPACE = os.path.join(CHECKS, "bootstate-check-free-space.sh")
PRE_SWITCH = os.path.normpath(os.path.join(HERE, "..", "..", "nixos", "pre-switch-check.sh"))


def render(function, **arguments):
    """The plan entry nixos/checks/checks.nix renders for `function` with `arguments`."""
    expression = "{ args }: (import %s/checks.nix).%s (builtins.fromJSON args)" % (CHECKS, function)
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--argstr", "args",
         json.dumps(arguments), "-E", expression],
        capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError("nix-instantiate (needed to render nixos/checks/checks.nix): "
                             + result.stderr)
    return json.loads(result.stdout)


class ExampleCheck(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)

    def item(self, document, item_id):
        for item in document["items"]:
            if item["id"] == item_id:
                return item
        raise AssertionError("no item %s in %s" % (item_id, document["items"]))

    def preview(self, toplevel):
        result = self.machine.bootstate("--json", "preview", toplevel)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        return result.returncode, json.loads(result.stdout)

    def printed_command(self, toplevel, verb):
        """The `bootstate VERB …` command the text preview prints, as words."""
        text = self.machine.bootstate("preview", toplevel).stdout
        found = re.search(r"`?(bootstate %s [^`\n]*)" % verb, text)
        self.assertIsNotNone(found, text)
        return found.group(1).split()

    def boot(self, name):
        self.machine.boot_into(name)
        self.machine.reboot()
        return self.machine.boot()

    def write(self, absolute, text, mode="w"):
        path = self.machine.path(absolute)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as file:
            file.write(text)

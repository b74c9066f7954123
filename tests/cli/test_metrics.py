"""`bootstate metrics`: node-exporter's textfile format, read back with the Prometheus client
library's own parser; --output replaces the file atomically."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Machine, command_step  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - the skip says why
    text_string_to_metric_families = None


def samples(text):
    """{(name, frozenset(labels)): value} of every sample."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found[(name, frozenset(labels.items()))]


@unittest.skipIf(text_string_to_metric_families is None,
                 "python3-prometheus-client is not installed (scripts/install-deps.sh)")
class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)

    def metrics(self, *arguments):
        result = self.machine.bootstate("metrics", *arguments)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_a_failed_recommended_migration(self):
        g1 = self.machine.write_plan("g1", [{"id": "app", "policy": "required", "steps": [
            command_step("one", ["/bin/true"])]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        g2 = self.machine.write_plan("g2", [
            {"id": "app", "policy": "required", "steps": [command_step("one", ["/bin/true"])]},
            {"id": "extra", "policy": "recommended", "steps": [
                command_step("a", ["/bin/true"]), command_step("b", ["/bin/false"])]}])
        self.machine.boot_into("g2")
        self.machine.reboot()
        self.machine.boot()
        found = samples(self.metrics())
        self.assertEqual(value(found, "bootstate_attempt_state", state="complete", generation=g2), 1)
        self.assertEqual(value(found, "bootstate_attempt_state", state="failed", generation=g2), 0)
        self.assertEqual(value(found, "bootstate_attempt_number"), 2)
        self.assertEqual(value(found, "bootstate_attempt_boots_without_progress"), 0)
        self.assertEqual(value(found, "bootstate_failed_steps"), 1)
        self.assertEqual(value(found, "bootstate_migrations", state="failed"), 1)
        self.assertEqual(value(found, "bootstate_migrations", state="applied"), 1)
        self.assertEqual(value(found, "bootstate_open_error_items"), 0)
        self.assertEqual(value(found, "bootstate_last_good_info", generation=g2, entry=""), 1)
        self.assertEqual(value(found, "bootstate_booted_info", generation=g2, entry=""), 1)
        self.assertEqual(value(found, "bootstate_boot_counting", state="impossible"), 1)
        self.assertEqual(value(found, "bootstate_boot_tries_left"), -1)
        self.assertNotEqual(g1, g2)

    def test_before_any_attempt(self):
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        os.makedirs(self.machine.path("/boot/bootstate"), exist_ok=True)
        found = samples(self.metrics())
        self.assertEqual(value(found, "bootstate_attempt_number"), 0)
        for state in ("in-progress", "complete", "failed", "abandoned"):
            self.assertEqual(value(found, "bootstate_attempt_state", state=state, generation=""), 0)

    def test_output_replaces_the_file(self):
        self.machine.write_plan("g1", [])
        self.machine.boot_into("g1")
        os.makedirs(self.machine.path("/boot/bootstate"), exist_ok=True)
        directory = self.machine.path("/textfile")
        os.makedirs(directory)
        target = os.path.join(directory, "bootstate.prom")
        with open(target, "w") as file:
            file.write("old\n")
        inode_before = os.stat(target).st_ino
        self.assertEqual(self.metrics("--output", target), "")
        with open(target) as file:
            text = file.read()
        self.assertIn("bootstate_attempt_number 0\n", text)
        self.assertNotEqual(os.stat(target).st_ino, inode_before)  # renamed over, not rewritten
        self.assertEqual(os.listdir(directory), ["bootstate.prom"])
        samples(text)  # parses
        missing = self.machine.bootstate("metrics", "--output", "/nonexistent/dir/x.prom")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("cannot create /nonexistent/dir/x.prom.tmp-", missing.stderr)

    def test_label_values_are_escaped(self):
        self.machine.write_plan('g"1\\x', [])
        self.machine.boot_into('g"1\\x')
        os.makedirs(self.machine.path("/boot/bootstate"), exist_ok=True)
        found = samples(self.metrics())
        self.assertIn(("bootstate_booted_info",
                       frozenset({"generation": '/nix/store/g"1\\x', "entry": ""}.items())), found)


if __name__ == "__main__":
    unittest.main()

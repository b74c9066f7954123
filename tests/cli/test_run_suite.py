"""run_suite.py, through which ctest runs every suite here: a skipped test is reported as
skipped (77), never as passed, and under CI as a failure."""

import os
import subprocess
import sys
import tempfile
import unittest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_suite.py")

SKIPPING = '''import unittest
class T(unittest.TestCase):
    def test_ran(self):
        pass
    def test_needs_a_tool(self):
        self.skipTest("the tool is not installed")
'''
PASSING = '''import unittest
class T(unittest.TestCase):
    def test_ran(self):
        pass
'''


class RunSuiteTest(unittest.TestCase):
    def run_module(self, text, ci):
        directory = tempfile.mkdtemp(prefix="bootstate-suite-")
        self.addCleanup(lambda: [os.unlink(os.path.join(directory, name))
                                 for name in os.listdir(directory)] and os.rmdir(directory))
        with open(os.path.join(directory, "test_fake.py"), "w") as file:
            file.write(text)
        environment = dict(os.environ, PYTHONPATH=directory, PYTHONDONTWRITEBYTECODE="1")
        environment.pop("CI", None)
        if ci is not None:
            environment["CI"] = ci
        return subprocess.run([sys.executable, RUNNER, "test_fake"], capture_output=True,
                              text=True, env=environment, timeout=60)

    def test_a_skip_is_reported_as_skipped(self):
        result = self.run_module(SKIPPING, None)
        self.assertEqual(result.returncode, 77, result.stderr)
        self.assertIn("the tool is not installed", result.stderr)
        self.assertEqual(self.run_module(SKIPPING, "false").returncode, 77)

    def test_under_ci_a_skip_fails(self):
        for ci in ("true", "1"):
            result = self.run_module(SKIPPING, ci)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("a skip is a failure", result.stderr)

    def test_all_passed(self):
        self.assertEqual(self.run_module(PASSING, "true").returncode, 0)


if __name__ == "__main__":
    unittest.main()

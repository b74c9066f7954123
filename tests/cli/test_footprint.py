"""What the program links, for the start-up every boot pays (docs/PERFORMANCE.md): no
iostreams and so no libstdc++ locale (f9bad07 removed them: text 2.26 -> 1.39 MB, fewer page
faults per run). The operator's commands (log, progress) brought them back once unnoticed."""

import os
import shutil
import subprocess
import unittest

BOOTSTATE = os.environ.get("BOOTSTATE", "bootstate")


class FootprintTest(unittest.TestCase):
    def test_no_iostreams_and_no_locale_in_the_program(self):
        if shutil.which("nm") is None:
            self.skipTest("nm is not installed (binutils, scripts/install-deps.sh)")
        result = subprocess.run(["nm", "-C", shutil.which(BOOTSTATE) or BOOTSTATE],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        if "no symbols" in result.stderr:
            self.skipTest("the program is stripped")
        linked = sorted({line.split(" ", 2)[2] for line in result.stdout.splitlines()
                         if line.count(" ") >= 2 and line.split(" ")[1] in "TtWw" and
                         any(name in line for name in ("std::basic_filebuf",
                                                       "std::basic_ifstream",
                                                       "std::basic_istringstream",
                                                       "std::locale::locale()"))})
        self.assertEqual(linked, [], "use core/read_file.hpp or open/read instead")


if __name__ == "__main__":
    unittest.main()

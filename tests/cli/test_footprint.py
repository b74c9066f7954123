"""What the program links, for the start-up every boot pays (docs/PERFORMANCE.md): no
iostreams and so no libstdc++ locale (f9bad07 removed them: text 2.26 -> 1.39 MB, fewer page
faults per run). The operator's commands (log, progress) brought them back once unnoticed."""

import os
import shutil
import subprocess
import sys
import unittest

BOOTSTATE = os.environ.get("BOOTSTATE", "bootstate")
IDLE_LAYOUT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench", "cli", "idle_layout.py")


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


    def test_the_idle_path_is_grouped_at_the_start_of_the_text(self):
        """cli/idle-path.ld puts the code an idle phase runs into one section (.text.idle):
        each 64 KiB of text that phase touches is a page fault. Without the script (or with a
        linker that ignored it) those functions were spread over 14 windows of 2 MB."""
        program = shutil.which(BOOTSTATE) or BOOTSTATE
        if shutil.which("readelf") is None or shutil.which("nm") is None:
            self.skipTest("readelf/nm are not installed (binutils, scripts/install-deps.sh)")
        sections = subprocess.run(["readelf", "-SW", program], capture_output=True, text=True,
                                  timeout=120).stdout
        found = [line.split("]", 1)[1].split() for line in sections.splitlines()
                 if " .text.idle " in line]
        self.assertEqual(len(found), 1, "no .text.idle section: was cli/idle-path.ld linked?")
        start, size = int(found[0][2], 16), int(found[0][4], 16)
        self.assertLess(size, 192 * 1024, "the idle section grew past three 64 KiB windows")
        symbols = subprocess.run(["nm", "-C", "--defined-only", program], capture_output=True,
                                 text=True, timeout=120).stdout
        if not symbols.strip():
            self.skipTest("the program is stripped")
        idle = ("bootstate::cli::run_command(", "bootstate::idle_from_certificate(",
                "bootstate::StoreLock::acquire(", "bootstate::SlotFiles::read_idle_certificate",
                "bootstate::cli::parse_options(")
        for name in idle:
            addresses = [int(line.split()[0], 16) for line in symbols.splitlines()
                         if line.split(" ", 2)[-1].startswith(name) and
                         "[clone .cold]" not in line]  # the parts never run stay apart
            self.assertTrue(addresses, name)
            self.assertTrue(all(start <= a < start + size for a in addresses),
                            "%s is outside .text.idle: rerun bench/cli/idle_layout.py" % name)

    def idle_build(self):
        """The build directory whose program the idle phases run under callgrind."""
        build = os.environ.get("BOOTSTATE_BUILD")
        if not build or not os.path.exists(os.path.join(build, "cli", "bootstate.map")):
            self.skipTest("BOOTSTATE_BUILD with cli/bootstate.map is not set (ctest sets it)")
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed (scripts/install-deps.sh)")
        if os.path.realpath(shutil.which(BOOTSTATE) or BOOTSTATE) != os.path.realpath(
                os.path.join(build, "cli", "bootstate")):
            self.skipTest("BOOTSTATE is not the program of BOOTSTATE_BUILD")
        return build

    def test_the_idle_layout_lists_what_an_idle_phase_runs(self):
        """The list in cli/idle-path.ld is current: every function the three idle phases run
        (callgrind) lies in a section it names. A change to the idle path that adds a function
        fails here until bench/cli/idle_layout.py BUILD_DIR is rerun."""
        build = self.idle_build()
        result = subprocess.run([sys.executable, IDLE_LAYOUT, build, "--check"],
                                capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_an_idle_phase_reads_no_clock(self):
        """The first clock read of a process faults in the vDSO's two data pages: an idle phase
        has no use for the time (a54d38a; before it, boot_facts and the lock read it)."""
        build = self.idle_build()
        sys.path.insert(0, os.path.dirname(IDLE_LAYOUT))
        import idle_layout

        _, names = idle_layout.idle_functions(build)
        self.assertIn("main", names)  # callgrind saw the program's own functions
        clocks = sorted(name for name in names
                        if "clock_gettime" in name or "gettimeofday" in name)
        self.assertEqual(clocks, [])


if __name__ == "__main__":
    unittest.main()

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
        program = self.program_with_binutils()
        sections = self.sections(program)
        self.assertIn(".text.idle", sections, "no .text.idle section: was cli/idle-path.ld linked?")
        start, size = sections[".text.idle"]
        self.assertLess(size, 192 * 1024, "the idle section grew past three 64 KiB windows")
        symbols = self.symbols(program)
        idle = ("bootstate::cli::run_command(", "bootstate::idle_from_certificate(",
                "bootstate::StoreLock::acquire(", "bootstate::SlotFiles::read_idle_certificate",
                "bootstate::cli::parse_options(")
        for name in idle:
            addresses = [address for address, symbol in symbols
                         if symbol.startswith(name) and
                         "[clone .cold]" not in symbol]  # the parts never run stay apart
            self.assertTrue(addresses, name)
            self.assertTrue(all(start <= a < start + size for a in addresses),
                            "%s is outside .text.idle: rerun bench/cli/idle_layout.py" % name)

    def program_with_binutils(self):
        """The program under test, once readelf and nm are known to be there."""
        if shutil.which("readelf") is None or shutil.which("nm") is None:
            self.skipTest("readelf/nm are not installed (binutils, scripts/install-deps.sh)")
        return shutil.which(BOOTSTATE) or BOOTSTATE

    def sections(self, program):
        """{name: (start, size)} of the program's sections (readelf)."""
        listing = subprocess.run(["readelf", "-SW", program], capture_output=True, text=True,
                                 timeout=120).stdout
        found = {}
        for line in listing.splitlines():
            if "]" not in line:
                continue
            fields = line.split("]", 1)[1].split()
            if len(fields) >= 5 and fields[0].startswith("."):
                found[fields[0]] = (int(fields[2], 16), int(fields[4], 16))
        return found

    def symbols(self, program):
        """[(address, demangled name)] of the program's defined symbols (nm)."""
        listing = subprocess.run(["nm", "-C", "--defined-only", program], capture_output=True,
                                 text=True, timeout=120).stdout
        if not listing.strip():
            self.skipTest("the program is stripped")
        return [(int(fields[0], 16), fields[2]) for fields in
                (line.split(" ", 2) for line in listing.splitlines()) if len(fields) == 3]

    def symbol_addresses(self, program, names):
        """{name: address} of the program's symbols that are in `names`."""
        return {name: address for address, name in self.symbols(program) if name in names}

    def test_start_and_exit_code_lies_in_the_idle_section(self):
        """Every run executes the C runtime's constructor and destructor walk (crtbeginS.o's
        frame_dummy, __do_global_dtors_aux) and `_fini`; callgrind shows them only as addresses,
        so the generated list cannot name them (bench/cli/idle_layout.py RUNTIME). Left in
        .text they were two page faults of their own on every idle boot (docs/PERFORMANCE.md
        "(j)")."""
        program = self.program_with_binutils()
        start, size = self.sections(program)[".text.idle"]
        names = ("frame_dummy", "__do_global_dtors_aux", "_fini")
        addresses = self.symbol_addresses(program, names)
        self.assertEqual(sorted(addresses), sorted(names))
        for name, address in addresses.items():
            self.assertTrue(start <= address < start + size, "%s is outside .text.idle" % name)

    def test_the_idle_section_spans_two_fault_windows_at_any_load_address(self):
        """The page cache maps the 64 KiB window around a fault (aligned in the address space).
        Linked with 4 KiB segment alignment the program loads at any page, and the 110 KiB from
        .init to the end of .text.idle spanned two or three windows (2.8 on average); with 64
        KiB (-z max-page-size, cli/CMakeLists.txt) the kernel aligns the load address to
        64 KiB and the span is the same on every run (docs/PERFORMANCE.md "(j)")."""
        program = self.program_with_binutils()
        headers = subprocess.run(["readelf", "-lW", program], capture_output=True, text=True,
                                 timeout=120).stdout
        aligns = [int(line.split()[-1], 16) for line in headers.splitlines()
                  if line.split()[:1] == ["LOAD"]]
        self.assertTrue(aligns)
        self.assertTrue(all(align >= 0x10000 for align in aligns), aligns)
        sections = self.sections(program)
        first = min(sections[".init"][0], sections[".text.idle"][0])
        last = sections[".text.idle"][0] + sections[".text.idle"][1] - 1
        self.assertLessEqual(last // 0x10000 - first // 0x10000 + 1, 2)

    def test_no_name_table_is_relocated(self):
        """Tables of std::string_view are pointers, which the dynamic loader rewrites at every
        start: every page of .data.rel.ro holding one is a page fault on every run. The word
        tables keep their text inline (core/inline_text.hpp) and so are plain read-only data;
        with them .data.rel.ro needed one page more."""
        program = self.program_with_binutils()
        start, size = self.sections(program)[".data.rel.ro"]
        names = ["bootstate::(anonymous namespace)::%s" % table
                 for table in ("kTypes", "kAttrs", "kStepStateNames", "kMigrationStateNames",
                               "kAttemptStateNames", "kDecisionNames", "kPolicyNames",
                               "kStepKindNames", "kStorageOpNames", "kFeatureNames")]
        addresses = self.symbol_addresses(program, names)
        self.assertEqual(sorted(addresses), sorted(names))
        relocated = sorted(name for name, address in addresses.items()
                           if start <= address < start + size)
        self.assertEqual(relocated, [])

    def test_an_idle_run_page_faults_little_more_than_a_c_program(self):
        """An idle boot's cost is mostly page faults (each near 1% of it on this machine):
        the idle `run` against bench_read4k, the C program that opens and reads 4 KiB, on the
        same settled 1,000-migration tree, in minor faults per run (getrusage, 40 runs each).
        Session 11 left 14 more; the start/exit code in .text.idle, the word tables out of
        .data.rel.ro, no mallopt and no glibc fstat on the idle path and a 256-byte buffer for
        /run/current-system left 9 (docs/PERFORMANCE.md "(j)")."""
        build = self.build_of_program()
        sys.path.insert(0, os.path.dirname(IDLE_LAYOUT))
        import idle_layout
        import resource

        reader = os.path.join(build, "bench", "cli", "bench_read4k")
        with idle_layout.settled_tree(build, 1000) as root:
            commands = {"c": [reader, os.path.join(root, "boot", "bootstate", "idle")],
                        "idle": [os.path.join(build, "cli", "bootstate"), "--root", root, "run",
                                 "--phase", "post-activation"]}
            faults = {}
            for name, command in commands.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
                for _ in range(40):
                    subprocess.run(command, check=True, capture_output=True, timeout=60)
                faults[name] = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt -
                                before) / 40
        self.assertLessEqual(faults["idle"] - faults["c"], 11.5, faults)

    def build_of_program(self):
        """The build directory (BOOTSTATE_BUILD) whose program is the one under test: its
        benchmark programs make the trees and the C baseline."""
        build = os.environ.get("BOOTSTATE_BUILD")
        if not build or not os.path.exists(os.path.join(build, "cli", "bootstate.map")):
            self.skipTest("BOOTSTATE_BUILD with cli/bootstate.map is not set (ctest sets it)")
        if os.path.realpath(shutil.which(BOOTSTATE) or BOOTSTATE) != os.path.realpath(
                os.path.join(build, "cli", "bootstate")):
            self.skipTest("BOOTSTATE is not the program of BOOTSTATE_BUILD")
        return build

    def idle_build(self):
        """The same, for running the idle phases under callgrind."""
        build = self.build_of_program()
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed (scripts/install-deps.sh)")
        return build

    def test_the_idle_layout_lists_what_an_idle_phase_runs(self):
        """The list in cli/idle-path.ld is current: every function the three idle phases run
        (callgrind) lies in a section it names. A change to the idle path that adds a function
        fails here until bench/cli/idle_layout.py BUILD_DIR is rerun."""
        build = self.idle_build()
        result = subprocess.run([sys.executable, IDLE_LAYOUT, build, "--check"],
                                capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_an_idle_phase_leaves_the_heap_settings_alone(self):
        """mallopt's code is a page fault an idle boot does not need: `run` tunes the heap for
        a whole state only once it knows it will read one (cli/main.cpp)."""
        build = self.idle_build()
        sys.path.insert(0, os.path.dirname(IDLE_LAYOUT))
        import idle_layout

        _, names = idle_layout.idle_functions(build)
        self.assertIn("main", names)
        self.assertEqual(sorted(name for name in names if "mallopt" in name), [])

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

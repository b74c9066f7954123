#!/usr/bin/env python3
"""Writes cli/idle-path.ld: the code a boot with nothing pending runs, placed together at the
start of the program's text (issue #17 item 1).

  python3 bench/cli/idle_layout.py BUILD_DIR [BUILD_DIR...] [--check]

Why: touching a page of the program for the first time costs a page fault, about 12 µs on a
virtual machine, more than the instructions around it. The kernel maps up to 64 KiB of page
cache around each fault, so what an idle phase pays for code is one fault per 64 KiB window it
touches. Left where the linker puts it (object by object), the idle path touches 14 windows of
2 MB of text; grouped, about 110 KiB, it touches two (the program's segments are aligned to
64 KiB, cli/CMakeLists.txt, so the windows fall on the same offsets at any load address).

How: the three idle phases run under callgrind on a settled store of 1,000 applied migrations
(bench/cli/scale.py's tree); every function of the program they execute is looked up in the
link map (BUILD_DIR/cli/bootstate.map) to find the input section that holds it, and the
script names those sections in one output section inserted before .text. GNU ld reads it with
-T (cli/CMakeLists.txt); a section the script names that no longer exists matches nothing, so a
stale list costs speed, never correctness. --check exits 1 when the list is stale (an idle
function outside the section): rerun without --check after changing the idle path.

With several build directories the list is the union of what each build's idle path runs: the
RelWithDebInfo build CI makes and the Release build nixpkgs' CMake hook makes inline
differently (a handful of sections each).
"""

import contextlib
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "cli", "idle-path.ld")
PHASES = ("initrd-pre-mount", "pre-switch-root", "post-activation")


def executed_functions(binary, root):
    """Names of the program's functions the idle phases execute (callgrind, not demangled)."""
    names = set()
    for phase in PHASES:
        with tempfile.NamedTemporaryFile(prefix="bootstate-idle-cg-") as out:
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no",
                            "--compress-strings=no", "--callgrind-out-file=" + out.name,
                            binary, "--root", root, "run", "--phase", phase],
                           check=True, capture_output=True)
            # Every function name, whatever object callgrind gives it: it names the functions
            # of the section this script wrote but calls their object "???". function_addresses
            # keeps only the names the program defines.
            for line in open(out.name, errors="replace"):
                if line.startswith("fn="):
                    names.add(line[3:].strip())
    return names


def function_addresses(binary, names):
    """Start address of each named function (nm: local symbols and clones included)."""
    addresses = set()
    listing = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True,
                             text=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwWi" and fields[2] in names:
            addresses.add(int(fields[0], 16))
    return addresses


def entry_point(binary):
    header = subprocess.run(["readelf", "-h", binary], check=True, capture_output=True,
                            text=True).stdout
    return int(re.search(r"Entry point address:\s+0x([0-9a-f]+)", header)[1], 16)


def input_sections(map_path):
    """(start, size, section name, file) of every input section the link kept."""
    sections, pending = [], None
    lines = open(map_path, errors="replace").read().split("Linker script and memory map", 1)[1]
    placed = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    for line in lines.splitlines():
        if re.match(r"^ \.text\S*$", line):  # long name: address on the next line
            pending = line.strip()
            continue
        named = re.match(r"^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if named:
            sections.append((int(named[2], 16), int(named[3], 16), named[1], named[4]))
        elif pending and placed.match(line):
            found = placed.match(line)
            sections.append((int(found[1], 16), int(found[2], 16), pending, found[3]))
        pending = None
    return sections


def pattern(section, file):
    """How the linker script names one input section: by its own name when the compiler gave
    the function a section of its own (-ffunction-sections), else by its object file."""
    if section != ".text":
        return "*(%s)" % section
    member = re.match(r"^.*/([^/()]+)\(([^()]+)\)$", file)  # archive(member)
    if member:
        return "*%s:%s(.text)" % (member[1], member[2])
    return "*%s(.text)" % os.path.basename(file)


@contextlib.contextmanager
def settled_tree(build, count=1000):
    """The settled tree of the scaling benchmark, made with `build`'s programs: one definition
    of "idle" for the layout, the tests and the benchmark."""
    sys.path.insert(0, HERE)
    saved_argv, sys.argv = sys.argv, [sys.argv[0], build]
    import scale

    scale = importlib.reload(scale)  # its programs are those of `build`
    sys.argv = saved_argv
    root = scale.tree(count)
    try:
        scale.settle(root)
        yield root
    finally:
        shutil.rmtree(root)
        shutil.rmtree(scale.binaries)


def idle_functions(build):
    """(program, names of every function the three idle phases run, the C library's too)."""
    with settled_tree(build) as root:
        binary = os.path.realpath(os.path.join(build, "cli", "bootstate"))
        return binary, executed_functions(binary, root)


def hot_patterns(build):
    binary, names = idle_functions(build)
    addresses = function_addresses(binary, names)
    addresses.add(entry_point(binary))  # _start: callgrind names it "(below main)"
    patterns = set()
    for start, size, section, file in input_sections(os.path.join(build, "cli", "bootstate.map")):
        if any(start <= address < start + size for address in addresses):
            patterns.add(pattern(section, file))
    return patterns


# Code every run executes at start and exit that callgrind cannot name (it shows their addresses):
# the C runtime's walk of the constructors and destructors (crtbeginS.o) and the exit code
# `_fini` (crti.o and crtn.o, in link order). Each is otherwise a page fault of its own.
RUNTIME = ("*crtbeginS.o(.text)", "KEEP(*(SORT_NONE(.fini)))")


def main():
    arguments = sys.argv[1:]
    check = "--check" in arguments
    builds = [os.path.abspath(a) for a in arguments if a != "--check"] or [os.path.abspath("build")]
    patterns = set()
    for build in builds:
        patterns |= hot_patterns(build)
    if check:
        listed = set(re.findall(r"^    (\S+)$", open(SOURCE).read(), re.M))
        missing = sorted(patterns - listed)
        for name in missing:
            print("not in %s: %s" % (SOURCE, name))
        print("%d of the idle path's %d sections listed" % (len(patterns) - len(missing),
                                                              len(patterns)))
        sys.exit(1 if missing else 0)
    with open(SOURCE, "w") as out:
        out.write("/* The code a boot with nothing pending runs, together at the start of the text:\n"
                  "   one page fault per 64 KiB it spans instead of one per function it calls.\n"
                  "   Written by bench/cli/idle_layout.py; see there. */\n"
                  "SECTIONS\n{\n  .text.idle :\n  {\n")
        for name in sorted(patterns):
            out.write("    %s\n" % name)
        for name in RUNTIME:
            out.write("    %s\n" % name)
        out.write("  }\n}\nINSERT BEFORE .text;\n")
    print("%s: %d input sections" % (SOURCE, len(patterns)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reads the `.note.dlopen` ELF notes of a binary (systemd's "ELF dlopen metadata": owner "FDO",
type 0x407c0c0a, a zero-terminated JSON array of {feature, description, priority, soname[]}),
the way NixOS' make-initrd-ng reads them: by section name, each note's payload cut at its first
NUL and parsed as a JSON array.

    dlopen_notes.py BINARY                 the notes as JSON
    dlopen_notes.py --check BINARY FEATURE=SONAME...
                                           exit 1 unless every FEATURE declares SONAME and every
                                           declared soname resolves on this machine (ldconfig -p)

Used by tests/nixos/dlopen-notes-test.sh (the installed binary) and tests/vm/vmimage.py (which
copies into the VM's initrd what the notes name, so a missing note fails the VM tier).
"""

import json
import pathlib
import struct
import subprocess
import sys

NOTE_TYPE = 0x407C0C0A
NOTE_OWNER = b"FDO"
SHT_NOTE = 7


class ElfError(Exception):
    pass


def _sections(data):
    """(name, type, offset, size, align) of every section of an ELF file."""
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    is64 = {1: False, 2: True}.get(data[4])
    endian = {1: "<", 2: ">"}.get(data[5])
    if is64 is None or endian is None:
        raise ElfError("unknown ELF class or byte order")
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        layout = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
        layout = endian + "IIIIIIIIII"
    headers = []
    for index in range(shnum):
        fields = struct.unpack_from(layout, data, shoff + index * shentsize)
        name, kind, _flags, _addr, offset, size, _link, _info, align, _entsize = fields
        headers.append((name, kind, offset, size, align))
    if not headers:
        raise ElfError("no section headers (stripped with --strip-sections?)")
    names_offset = headers[shstrndx][2]

    def name_of(index):
        start = names_offset + index
        return data[start:data.index(b"\0", start)].decode()

    return endian, [(name_of(n), kind, offset, size, align) for n, kind, offset, size, align
                    in headers]


def _notes(data, endian, offset, size, align):
    """(owner, type, payload) of each note in a note section."""
    step = max(4, align)
    end = offset + size
    while offset + 12 <= end:
        namesz, descsz, kind = struct.unpack_from(endian + "III", data, offset)
        name_start = offset + 12
        desc_start = name_start + (-(-namesz // 4) * 4)
        owner = data[name_start:name_start + namesz].rstrip(b"\0")
        yield owner, kind, data[desc_start:desc_start + descsz]
        offset = desc_start + (-(-descsz // step) * step)


def read(binary):
    """Every dlopen dependency the binary declares: a list of dicts as written in the notes."""
    data = pathlib.Path(binary).read_bytes()
    endian, sections = _sections(data)
    entries = []
    for name, kind, offset, size, align in sections:
        if name != ".note.dlopen":
            continue
        if kind != SHT_NOTE:
            raise ElfError(f"{binary}: section .note.dlopen is not of type SHT_NOTE ({kind})")
        for owner, note_type, payload in _notes(data, endian, offset, size, align):
            if owner != NOTE_OWNER or note_type != NOTE_TYPE:
                continue
            text = payload.split(b"\0", 1)[0]
            try:
                parsed = json.loads(text)
            except ValueError as error:
                raise ElfError(f"{binary}: a .note.dlopen payload is not JSON: {error}: "
                               f"{text!r}") from error
            if not isinstance(parsed, list):
                raise ElfError(f"{binary}: a .note.dlopen payload is not a JSON array: {text!r}")
            entries.extend(parsed)
    return entries


def sonames(binary):
    """The sonames the notes declare, in order, without repeats."""
    seen = []
    for entry in read(binary):
        for soname in entry.get("soname", []):
            if soname not in seen:
                seen.append(soname)
    return seen


def resolve(soname):
    """Where the dynamic loader of this machine finds `soname` (its ld.so cache), or None."""
    out = subprocess.run(["ldconfig", "-p"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ", 1)[0] == soname and "x86-64" in parts[0]:
            return parts[1]
    for line in out.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ", 1)[0] == soname:
            return parts[1]
    return None


def check(binary, expected):
    """Problems, one sentence each: a feature missing or naming another soname, a soname that
    does not resolve, a priority the spec does not know."""
    problems = []
    entries = read(binary)
    by_feature = {}
    for entry in entries:
        by_feature.setdefault(entry.get("feature"), []).append(entry)
        if entry.get("priority", "recommended") not in ("required", "recommended", "suggested"):
            problems.append(f"feature {entry.get('feature')}: unknown priority "
                            f"{entry.get('priority')!r}")
        if not entry.get("soname"):
            problems.append(f"feature {entry.get('feature')}: no soname")
        for soname in entry.get("soname", []):
            if resolve(soname) is None:
                problems.append(f"feature {entry.get('feature')}: {soname} does not resolve on "
                                "this machine (ldconfig -p)")
    for feature, soname in expected:
        declared = [s for e in by_feature.get(feature, []) for s in e.get("soname", [])]
        if not declared:
            problems.append(f"{binary}: no .note.dlopen declares feature {feature!r}")
        elif soname not in declared:
            problems.append(f"feature {feature}: declares {declared}, not {soname}")
    return problems


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        expected = [tuple(arg.split("=", 1)) for arg in argv[2:]]
        problems = check(argv[1], expected)
        for problem in problems:
            print(f"not ok - {problem}")
        if not problems:
            print(f"ok - {argv[1]} declares {', '.join(f'{f}={s}' for f, s in expected)}; "
                  "every soname resolves")
        return 1 if problems else 0
    if len(argv) == 1:
        print(json.dumps(read(argv[0]), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ElfError, OSError) as error:
        print(f"dlopen_notes: {error}", file=sys.stderr)
        sys.exit(2)

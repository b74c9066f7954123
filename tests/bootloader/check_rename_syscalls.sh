#!/bin/sh
# Power cuts around boot-loader renames (issue #13): each entry rename must be ONE rename(2)
# that never replaces (RENAME_NOREPLACE), followed by fsync of the directory and syncfs before
# anything else is renamed, and no hard links (link+unlink leaves both names after a cut).
# Runs a SystemdBoot test case of test_bootloader under strace and reads the system calls.
#   check_rename_syscalls.sh TEST_BOOTLOADER_BINARY
# Exit 77 (skipped) without strace or when ptrace is not allowed.
set -u
bin=$1
command -v strace >/dev/null 2>&1 || { echo "no strace"; exit 77; }
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
if ! strace -f -o "$log" -e trace=rename,renameat,renameat2,link,linkat,fsync,fdatasync,syncfs \
    "$bin" -tc="*rearm and mark_good rename the booted file and are idempotent" \
    >/dev/null 2>&1; then
  if grep -q "PTRACE" "$log" 2>/dev/null || [ ! -s "$log" ]; then echo "strace unusable"; exit 77; fi
  echo "the test case failed under strace"; exit 1
fi
awk '
  /[^a-z](link|linkat)\(/ { print "hard link used: " $0; bad = 1 }
  /rename(at|at2)?\(/ && / = 0$/ {
    if (pending) { print "rename before the previous one was made durable: " $0; bad = 1 }
    if ($0 !~ /RENAME_NOREPLACE/) { print "rename that may replace: " $0; bad = 1 }
    pending = 2; renames++; next
  }
  /fsync\(/ && / = 0$/ && pending == 2 { pending = 1; next }
  /syncfs\(/ && / = 0$/ && pending == 1 { pending = 0; next }
  END {
    if (pending) { print "last rename not followed by fsync and syncfs"; bad = 1 }
    if (renames < 3) { print "expected 3 renames (bad, re-arm, good), saw " renames; bad = 1 }
    if (!bad) print renames " renames, each RENAME_NOREPLACE then fsync(dir) and syncfs"
    exit bad
  }' "$log"

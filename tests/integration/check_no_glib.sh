#!/usr/bin/env bash
# Usage: check_no_glib.sh BINARY — fails if BINARY's dynamic dependencies include glib & co.
set -euo pipefail
forbidden='libglib|libgio|libgobject|libfwupd|libjson-glib'
deps=$(ldd "$1")
echo "$deps"
if grep -Eq "$forbidden" <<<"$deps"; then
  echo "$1 links glib: it must not (the initrd carries it)" >&2
  exit 1
fi
# Positive control: the pattern does match a library that links glib, when one is installed.
for control in /usr/lib/x86_64-linux-gnu/libgio-2.0.so.0 /usr/lib/x86_64-linux-gnu/libfwupd.so.2; do
  if [ -e "$control" ]; then
    # Not `ldd | grep -q`: grep stops at the first match, ldd gets SIGPIPE and pipefail turns
    # that into a failure (a flaky test, seen once).
    control_deps=$(ldd "$control")
    grep -Eq "$forbidden" <<<"$control_deps" || { echo "control $control did not match" >&2; exit 1; }
    break
  fi
done
echo "no glib in $1"

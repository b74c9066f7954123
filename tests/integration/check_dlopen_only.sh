#!/usr/bin/env bash
# Usage: check_dlopen_only.sh BINARY — fails if BINARY names libfdisk, libblkid or libsystemd in
# its DT_NEEDED entries. bootstate loads them on first use (initrd/util_linux.hpp,
# stage2/libsystemd.hpp) so that a boot with nothing pending does not pay for loading them
# (docs/PERFORMANCE.md, "(a) nothing pending").
set -euo pipefail
forbidden='\[(libfdisk|libblkid|libsystemd)\.so'
needed=$(readelf -d "$1" | grep NEEDED || true)
echo "$needed"
if grep -Eq "$forbidden" <<<"$needed"; then
  echo "$1 links a library that it must load on first use" >&2
  exit 1
fi
# Positive control: the pattern matches where the dependency is (libfdisk needs libblkid).
for control in /usr/lib/x86_64-linux-gnu/libfdisk.so.1 /lib/x86_64-linux-gnu/libfdisk.so.1; do
  if [ -e "$control" ]; then
    # Captured first: `| grep -q` can SIGPIPE the writer, which pipefail reports as failure.
    control_needed=$(readelf -d "$control" | grep NEEDED || true)
    grep -Eq "$forbidden" <<<"$control_needed" ||
      { echo "control $control did not match" >&2; exit 1; }
    break
  fi
done
echo "$1 loads libfdisk, libblkid and libsystemd on first use only"

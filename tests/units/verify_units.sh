#!/usr/bin/env bash
# Usage: verify_units.sh BOOTSTATE_BINARY UNITS_SOURCE_DIR
# Renders the unit templates with the built binary and runs `systemd-analyze verify` on them;
# any message about our units (bad setting, missing binary, ordering cycle) fails the test.
set -euo pipefail
binary=$1
source=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed: skipped" >&2
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for template in "$source"/*.service.in; do
  unit="$work/$(basename "${template%.in}")"
  sed "s|@BOOTSTATE_BIN@|$binary|" "$template" >"$unit"
done
output=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$work"/*.service 2>&1 || true)
echo "$output"
if echo "$output" | grep -i "bootstate" | grep -viE "^$" >/dev/null; then
  echo "systemd-analyze reported problems with the bootstate units" >&2
  exit 1
fi
# Ordering the contract requires (docs/DESIGN.md "Phases").
grep -q "^Before=sysroot.mount" "$work/bootstate-initrd-pre-mount.service"
grep -q "^After=initrd-fs.target" "$work/bootstate-pre-switch-root.service"
grep -q "^Before=initrd-nixos-activation.service" "$work/bootstate-pre-switch-root.service"
grep -q "^RequiredBy=boot-complete.target" "$work/bootstate-post-activation.service"
grep -q "^Before=boot-complete.target" "$work/bootstate-post-activation.service"
echo "units verified"

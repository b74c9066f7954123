#!/bin/sh
# bootstate-pg-check: the check of docs/CHECKS.md "PostgreSQL": does the configured server's
# major version match the data directory's? Prints bootstate item lines (docs/DESIGN.md "Checks
# and resolutions") on stdout; nothing and exit 0 when the versions match or there is no data
# directory yet (the server's own start-up creates it). No network, no shell of the caller's:
# every tool is named by an absolute path on the command line.
#
#   bootstate-pg-check --data-dir DIR --server-bindir BINDIR
#
# Exit 0 with item lines (or none); exit 2 on bad arguments; exit 1 when the server binary does
# not answer `postgres --version` (bootstate turns that into an error item of its own).
# Cost when nothing is wrong: this shell, one read of PG_VERSION, one `postgres --version`.
set -eu

usage() {
  echo "usage: bootstate-pg-check --data-dir DIR --server-bindir BINDIR" >&2
  exit 2
}

data_dir=
server_bindir=
while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) [ $# -ge 2 ] || usage; data_dir=$2; shift 2 ;;
    --server-bindir) [ $# -ge 2 ] || usage; server_bindir=$2; shift 2 ;;
    *) echo "bootstate-pg-check: unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$data_dir" ] || { echo "bootstate-pg-check: --data-dir is required" >&2; usage; }
[ -n "$server_bindir" ] || { echo "bootstate-pg-check: --server-bindir is required" >&2; usage; }
case $data_dir in /*) ;; *) echo "bootstate-pg-check: --data-dir must be absolute: $data_dir" >&2; exit 2 ;; esac
data_dir=${data_dir%/}
# Under the machine's root: bootstate's --root (BOOTSTATE_ROOT; "/" on a machine, so nothing
# changes there) lets tests run the declared argv against a tree.
root=${BOOTSTATE_ROOT:-/}
data_dir=${root%/}$data_dir

# JSON string contents: backslash and double quote escaped; other control characters cannot
# occur (paths with a newline are refused by the module's assertion; PG_VERSION is checked).
json() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

item() { # id message resolutions-json default-or-empty
  if [ -n "$4" ]; then
    printf '{"id": "%s", "severity": "error", "message": "%s", "resolutions": %s, "default": "%s"}\n' "$1" "$(json "$2")" "$3" "$4"
  else
    printf '{"id": "%s", "severity": "error", "message": "%s", "resolutions": %s}\n' "$1" "$(json "$2")" "$3"
  fi
}

# No data directory yet, or one the server has not initialised: nothing to predict.
[ -f "$data_dir/PG_VERSION" ] || exit 0
data_major=$(head -n 1 "$data_dir/PG_VERSION")

version_line=$("$server_bindir/postgres" --version) || {
  echo "bootstate-pg-check: $server_bindir/postgres --version failed" >&2
  exit 1
}
# "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → 15
server_major=$(printf '%s\n' "$version_line" | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p')
case $server_major in
  '' | *[!0-9]*)
    echo "bootstate-pg-check: cannot read a major version in \"$version_line\" ($server_bindir/postgres)" >&2
    exit 1
    ;;
esac

case $data_major in
  '' | *[!0-9]*)
    # Not a number: a finding of its own, with nothing bootstate could run to fix it.
    item "postgresql-data-version-unreadable" \
      "$data_dir/PG_VERSION does not hold a major version number; PostgreSQL $server_major will refuse to start on $data_dir" \
      "[]" ""
    exit 0
    ;;
esac

# Stable ids: the same pair of versions gives the same id on every run, and a choice made for
# "15 to 14" is not taken for a later, different finding.
if [ "$data_major" -eq "$server_major" ]; then
  exit 0
elif [ "$data_major" -lt "$server_major" ]; then
  item "postgresql-upgrade-$data_major-to-$server_major" \
    "$data_dir holds PostgreSQL $data_major data; the configured server is PostgreSQL $server_major and will not start on it" \
    '["pg-upgrade", "dump-restore"]' pg-upgrade
else
  item "postgresql-downgrade-$data_major-to-$server_major" \
    "$data_dir holds PostgreSQL $data_major data, newer than the configured server PostgreSQL $server_major, which cannot read it" \
    '["dump-restore", "restore-backup"]' dump-restore
fi

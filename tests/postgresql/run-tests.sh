#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && pass || fail`: pass only echoes, it cannot fail
# Runs nixos/postgresql/bootstate-pg.sh — the exact script the NixOS module wraps — against
# Debian's real PostgreSQL 15. Only one major version is packaged here, so "old" and "new" are
# two clusters of 15; what is tested is the procedure (initdb like the old cluster, pg_upgrade,
# markers, idempotent re-runs, dump with the newer tools, restore into a fresh older cluster),
# not a cross-version catalog conversion.
#
# Exit 0: all passed; 77: skipped (postgresql-15 not installed, or cannot run as its user);
# anything else: a failure. Cleans up its temp tree and servers whatever happens.
set -euo pipefail

# Under CI every prerequisite is installed (scripts/install-deps.sh test): a missing one is a
# failure there, never a skip that ctest would count as not failing.
SKIP=77
[ -z "${CI:-}" ] || SKIP=1
here=$(cd "$(dirname "$0")" && pwd)
script=$(cd "$here/../.." && pwd)/nixos/postgresql/bootstate-pg.sh
bindir=${PG_TEST_BINDIR:-/usr/lib/postgresql/15/bin}

if [ ! -x "$bindir/pg_upgrade" ] || [ ! -x "$bindir/initdb" ]; then
  echo "SKIP: PostgreSQL 15 is not installed ($bindir/pg_upgrade missing; apt-get install postgresql-15)"
  exit $SKIP
fi
pg_user=postgres
if [ "$(id -u)" -eq 0 ]; then
  id "$pg_user" >/dev/null 2>&1 || { echo "SKIP: no '$pg_user' user to run the servers as"; exit $SKIP; }
else
  pg_user=$(id -un) # not root: the clusters belong to the caller
fi

tmp=$(mktemp -d /tmp/bootstate-pg-test.XXXXXX)
chmod 0755 "$tmp"
port=$((40000 + $$ % 20000))
sock=$tmp/sock
mkdir -p "$sock"
[ "$(id -u)" -ne 0 ] || chown "$pg_user" "$sock" "$tmp"

run_as() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$pg_user" --regid="$(id -g "$pg_user")" --init-groups -- env HOME="$tmp" "$@"
  else
    "$@"
  fi
}

cleanup() {
  local dir
  for dir in "$tmp"/*/; do
    [ -f "$dir/postmaster.pid" ] && run_as "$bindir/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; failures=$((failures + 1)); }

start() { run_as "$bindir/pg_ctl" -D "$1" -l "$tmp/test-server.log" -w -o "-c listen_addresses='' -c unix_socket_directories='$sock' -p $port" start >/dev/null; }
stop() { run_as "$bindir/pg_ctl" -D "$1" -m fast -w stop >/dev/null; }
sql() { run_as "$bindir/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$pg_user" -d "$1" -c "$2"; }

# The script under test, with the parameters the NixOS module passes.
bspg() {
  env PG_OLD_BINDIR="$bindir" PG_NEW_BINDIR="$bindir" PG_OLD_DATADIR="$tmp/a" PG_NEW_DATADIR="$tmp/b" \
    PG_USER="$pg_user" PG_WORKDIR="$tmp/work" PG_PORT="$((port + 1))" "$script" "$@"
}

echo "# cluster A: initdb, a database with a table and rows, a role"
run_as "$bindir/initdb" -D "$tmp/a" -U "$pg_user" --encoding=UTF8 --locale=C >/dev/null 2>&1
start "$tmp/a"
sql postgres "CREATE ROLE app LOGIN"
sql postgres "CREATE DATABASE shop OWNER app"
sql shop "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g; ALTER TABLE items OWNER TO app;"
sql postgres "CREATE TABLE note (t text); INSERT INTO note VALUES ('in postgres db');"
stop "$tmp/a"

echo "# check before anything ran"
if bspg upgrade-done; then fail "upgrade-done is false before the upgrade"; else pass "upgrade-done is false before the upgrade"; fi

echo "# an interrupted earlier run left a half-built target: it must be set aside, not trusted"
mkdir -p "$tmp/b" && echo junk >"$tmp/b/PG_VERSION"
[ "$(id -u)" -ne 0 ] || chown -R "$pg_user" "$tmp/b"

echo "# upgrade A -> B"
if bspg upgrade >"$tmp/upgrade.log" 2>&1; then pass "upgrade exits 0"; else fail "upgrade exits 0"; cat "$tmp/upgrade.log"; fi
if bspg upgrade-done; then pass "upgrade-done is true after the upgrade"; else fail "upgrade-done after the upgrade"; fi
if ls -d "$tmp"/b.bootstate-incomplete-* >/dev/null 2>&1; then pass "the half-built target was moved aside"; else fail "half-built target moved aside"; fi
[ -f "$tmp/a/PG_VERSION" ] && [ ! -e "$tmp/a/global/pg_control.old" ] && pass "copy mode left A intact" || fail "A intact after upgrade"

start "$tmp/b"
[ "$(sql shop 'SELECT count(*) FROM items')" = 1000 ] && pass "B has the 1000 rows" || fail "rows in B"
[ "$(sql shop "SELECT name FROM items WHERE id = 777")" = "item 777" ] && pass "B has row 777" || fail "row 777 in B"
[ "$(sql shop "SELECT tableowner FROM pg_tables WHERE tablename = 'items'")" = app ] && pass "B keeps the table owner" || fail "owner in B"
[ "$(sql postgres 'SELECT t FROM note')" = "in postgres db" ] && pass "B has the postgres database's table" || fail "postgres db table in B"
echo "# writes after the upgrade (they must survive a downgrade)"
sql shop "INSERT INTO items VALUES (1001, 'written on B')"
stop "$tmp/b"

echo "# upgrade again: recognised as done, nothing touched"
before=$(stat -c %Y "$tmp/b/PG_VERSION")
if bspg upgrade >"$tmp/upgrade2.log" 2>&1 && grep -q "already upgraded" "$tmp/upgrade2.log" && [ "$(stat -c %Y "$tmp/b/PG_VERSION")" = "$before" ]; then
  pass "a second upgrade is a no-op"
else
  fail "second upgrade no-op"; cat "$tmp/upgrade2.log"
fi

echo "# downgrade resolution: dump B with B's tools, restore into a fresh A'"
if bspg downgrade-done; then fail "downgrade-done false before"; else pass "downgrade-done is false before the downgrade"; fi
if bspg downgrade >"$tmp/downgrade.log" 2>&1; then pass "downgrade exits 0"; else fail "downgrade exits 0"; cat "$tmp/downgrade.log"; fi
if bspg downgrade-done; then pass "downgrade-done is true after"; else fail "downgrade-done after"; fi
ls -d "$tmp"/a.bootstate-before-downgrade-* >/dev/null 2>&1 && pass "the original A was kept aside" || fail "original A kept aside"
ls -d "$tmp"/b.bootstate-downgraded-* >/dev/null 2>&1 && [ ! -e "$tmp/b" ] && pass "B was set aside" || fail "B set aside"
start "$tmp/a"
[ "$(sql shop 'SELECT count(*) FROM items')" = 1001 ] && pass "A' has all 1001 rows" || fail "rows in A'"
[ "$(sql shop "SELECT name FROM items WHERE id = 1001")" = "written on B" ] && pass "A' has the row written after the upgrade" || fail "post-upgrade row in A'"
[ "$(sql shop "SELECT tableowner FROM pg_tables WHERE tablename = 'items'")" = app ] && pass "A' keeps the role and owner" || fail "owner in A'"
[ "$(sql postgres 'SELECT t FROM note')" = "in postgres db" ] && pass "A' has the postgres database's table" || fail "postgres db table in A'"
stop "$tmp/a"

echo "# downgrade again: recognised as done"
if bspg downgrade >"$tmp/downgrade2.log" 2>&1 && grep -q "already restored" "$tmp/downgrade2.log"; then
  pass "a second downgrade is a no-op"
else
  fail "second downgrade no-op"; cat "$tmp/downgrade2.log"
fi

echo "# upgrade after the downgrade starts from A' and clears the restore marker"
if bspg upgrade >"$tmp/upgrade3.log" 2>&1 && bspg upgrade-done && ! bspg downgrade-done; then
  pass "re-upgrade after a downgrade"
else
  fail "re-upgrade after a downgrade"; cat "$tmp/upgrade3.log"
fi

echo "# usage errors"
set +e
bspg frobnicate >/dev/null 2>&1; rc=$?
env -u PG_OLD_BINDIR "$script" upgrade >/dev/null 2>&1; rc2=$?
set -e
[ "$rc" = 2 ] && pass "unknown subcommand exits 2" || fail "unknown subcommand exit ($rc)"
[ "$rc2" != 0 ] && pass "missing parameter fails" || fail "missing parameter"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all PostgreSQL checks passed"

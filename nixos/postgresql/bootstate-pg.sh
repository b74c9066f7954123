#!/usr/bin/env bash
# bootstate-pg: the steps of a PostgreSQL major-version migration, run by bootstate as the
# `command` of plan steps (docs/NIXOS.md "PostgreSQL"). Standalone on purpose: the NixOS module
# wraps it, and tests/postgresql/run-tests.sh runs the very same file against Debian's
# PostgreSQL.
#
#   bootstate-pg upgrade         initdb the new cluster like the old one, then pg_upgrade (copy
#                                mode: the old data directory is left as it was)
#   bootstate-pg upgrade-done    exit 0 when `upgrade` completed (the step's `check`)
#   bootstate-pg downgrade       resolve a rollback: pg_dump the new cluster with the NEW tools,
#                                move the old data directory aside, initdb a fresh old cluster
#                                and pg_restore into it (the undo step)
#   bootstate-pg downgrade-done  exit 0 when `downgrade` completed
#
# Parameters (environment):
#   PG_OLD_BINDIR, PG_NEW_BINDIR    bin directories of the old and the new major version
#   PG_OLD_DATADIR, PG_NEW_DATADIR  data directories (must differ)
#   PG_USER                         the cluster owner (default postgres); commands run as it
#   PG_WORKDIR                      scratch space for sockets, logs and dumps; default
#                                   $PG_NEW_DATADIR.bootstate-work (kept on failure, for reading)
#   PG_INITDB_ARGS                  extra initdb arguments (word-split); the encoding and
#                                   locale are taken from the old cluster unless given here
#   PG_PORT                         port for the temporary servers (default 50432); they listen
#                                   on a Unix socket in PG_WORKDIR only
# Every step is safe to run again after an interruption: a half-built target is moved aside
# (never deleted) and rebuilt; a completed step is recognised by its marker file.
set -euo pipefail

log() { printf 'bootstate-pg: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

: "${PG_OLD_BINDIR:?PG_OLD_BINDIR is not set}" "${PG_NEW_BINDIR:?PG_NEW_BINDIR is not set}"
: "${PG_OLD_DATADIR:?PG_OLD_DATADIR is not set}" "${PG_NEW_DATADIR:?PG_NEW_DATADIR is not set}"
PG_USER=${PG_USER:-postgres}
PG_PORT=${PG_PORT:-50432}
PG_WORKDIR=${PG_WORKDIR:-$PG_NEW_DATADIR.bootstate-work}
PG_OLD_DATADIR=${PG_OLD_DATADIR%/}
PG_NEW_DATADIR=${PG_NEW_DATADIR%/}
[ "$PG_OLD_DATADIR" != "$PG_NEW_DATADIR" ] || die "old and new data directory are the same ($PG_OLD_DATADIR)"

UPGRADE_MARKER=$PG_NEW_DATADIR/.bootstate-upgraded-from
RESTORE_MARKER=$PG_OLD_DATADIR/.bootstate-restored-from

# Run a command as the cluster owner. setpriv needs no PAM configuration (runuser does).
as_user() {
  if [ "$(id -u)" -eq 0 ] && [ "$PG_USER" != root ]; then
    setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --init-groups -- env HOME="$PG_WORKDIR" "$@"
  else
    "$@"
  fi
}

# A directory owned by the cluster owner, mode 0700 (initdb and pg_upgrade insist).
owned_dir() {
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_USER:$(id -gn "$PG_USER")" "$1"; fi
  chmod 0700 "$1"
}

# Moves a directory aside under a fresh name; data is never deleted by this script.
move_aside() {
  local target
  target="$1.bootstate-$2-$(date +%Y%m%d%H%M%S)-$$"
  log "moving $1 aside to $target"
  mv -- "$1" "$target"
}

major_of() { # bindir → major version number, e.g. 15
  "$1/postgres" --version | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

start_server() { # bindir datadir
  as_user "$1/pg_ctl" -D "$2" -l "$PG_WORKDIR/server.log" -w -t 120 \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_WORKDIR/socket' -p $PG_PORT" start >&2 ||
    { cat "$PG_WORKDIR/server.log" >&2 || true; die "cannot start the server on $2"; }
}

stop_server() { # bindir datadir
  as_user "$1/pg_ctl" -D "$2" -m fast -w -t 120 stop >&2
}

# Stops a server this script left running after an interruption (its socket is ours).
stop_if_running() { # bindir datadir
  if [ -f "$2/postmaster.pid" ] && as_user "$1/pg_ctl" -D "$2" status >/dev/null 2>&1; then
    log "stopping a server left running on $2"
    stop_server "$1" "$2"
  fi
}

psql_as() { # bindir db args...
  local bindir=$1 db=$2
  shift 2
  as_user "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_WORKDIR/socket" -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"
}

# initdb arguments reproducing the running server's encoding and locale (template0's).
initdb_args_of() { # bindir
  local enc collate ctype
  read -r enc collate ctype < <(psql_as "$1" postgres -A -t -F ' ' -c \
    "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = 'template0'")
  printf '%s\n' "--encoding=$enc --lc-collate=$collate --lc-ctype=$ctype"
}

prepare_workdir() {
  owned_dir "$PG_WORKDIR"
  owned_dir "$PG_WORKDIR/socket"
  cd "$PG_WORKDIR"
}

cmd_upgrade() {
  if [ -e "$UPGRADE_MARKER" ]; then
    log "already upgraded: $(cat "$UPGRADE_MARKER")"
    return 0
  fi
  [ -f "$PG_OLD_DATADIR/PG_VERSION" ] || die "$PG_OLD_DATADIR is not a PostgreSQL data directory"
  local old_major new_major
  old_major=$(major_of "$PG_OLD_BINDIR")
  new_major=$(major_of "$PG_NEW_BINDIR")
  [ "$(cat "$PG_OLD_DATADIR/PG_VERSION")" = "$old_major" ] ||
    die "$PG_OLD_DATADIR belongs to PostgreSQL $(cat "$PG_OLD_DATADIR/PG_VERSION"), not $old_major"
  prepare_workdir
  stop_if_running "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"
  # An interrupted earlier run left a half-built target: set it aside and start over.
  if [ -e "$PG_NEW_DATADIR" ]; then
    stop_if_running "$PG_NEW_BINDIR" "$PG_NEW_DATADIR"
    move_aside "$PG_NEW_DATADIR" incomplete
  fi

  # The new cluster must have the old one's encoding and locale, or pg_upgrade refuses.
  local initdb_args
  if [ -n "${PG_INITDB_ARGS:-}" ]; then
    initdb_args=$PG_INITDB_ARGS
  else
    start_server "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"
    initdb_args=$(initdb_args_of "$PG_OLD_BINDIR")
    stop_server "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"
  fi
  log "initdb $PG_NEW_DATADIR ($new_major) with: $initdb_args"
  owned_dir "$PG_NEW_DATADIR"
  # shellcheck disable=SC2086 # PG_INITDB_ARGS is a word list by contract
  as_user "$PG_NEW_BINDIR/initdb" -D "$PG_NEW_DATADIR" -U "$PG_USER" $initdb_args >&2

  log "pg_upgrade $PG_OLD_DATADIR ($old_major) -> $PG_NEW_DATADIR ($new_major)"
  if ! as_user "$PG_NEW_BINDIR/pg_upgrade" \
    --old-bindir="$PG_OLD_BINDIR" --new-bindir="$PG_NEW_BINDIR" \
    --old-datadir="$PG_OLD_DATADIR" --new-datadir="$PG_NEW_DATADIR" \
    --username="$PG_USER" --socketdir="$PG_WORKDIR/socket" \
    --old-port="$PG_PORT" --new-port="$PG_PORT" >&2; then
    find "$PG_NEW_DATADIR" "$PG_WORKDIR" -name '*.log' -path '*pg_upgrade*' -exec tail -n 40 {} + >&2 2>/dev/null || true
    die "pg_upgrade failed; the old cluster in $PG_OLD_DATADIR is unchanged"
  fi
  # A restore marker from an earlier downgrade would make a later downgrade look done.
  if [ -e "$RESTORE_MARKER" ]; then mv -- "$RESTORE_MARKER" "$RESTORE_MARKER.$(date +%Y%m%d%H%M%S)"; fi
  printf '%s %s -> %s %s\n' "$old_major" "$PG_OLD_DATADIR" "$new_major" "$PG_NEW_DATADIR" >"$UPGRADE_MARKER"
  sync -f "$UPGRADE_MARKER" 2>/dev/null || sync
  log "upgraded; the old cluster in $PG_OLD_DATADIR is kept unchanged"
}

cmd_upgrade_done() { [ -e "$UPGRADE_MARKER" ]; }

cmd_downgrade() {
  if [ -e "$RESTORE_MARKER" ]; then
    log "already restored: $(cat "$RESTORE_MARKER")"
    # Interrupted after the marker was written: finish setting the newer cluster aside.
    if [ -e "$UPGRADE_MARKER" ]; then move_aside "$PG_NEW_DATADIR" downgraded; fi
    return 0
  fi
  [ -f "$PG_NEW_DATADIR/PG_VERSION" ] || die "$PG_NEW_DATADIR is not a PostgreSQL data directory: nothing to bring back"
  prepare_workdir
  local dumps=$PG_WORKDIR/dump
  stop_if_running "$PG_NEW_BINDIR" "$PG_NEW_DATADIR"
  stop_if_running "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"

  # 1. Dump the newer cluster with its own (newer) tools: the only tools that can read it.
  rm -rf "$dumps"
  owned_dir "$dumps"
  start_server "$PG_NEW_BINDIR" "$PG_NEW_DATADIR"
  local initdb_args=${PG_INITDB_ARGS:-}
  [ -n "$initdb_args" ] || initdb_args=$(initdb_args_of "$PG_NEW_BINDIR")
  psql_as "$PG_NEW_BINDIR" postgres -A -t -c \
    "SELECT datname FROM pg_database WHERE datallowconn AND datname NOT IN ('template0', 'template1') ORDER BY 1" \
    >"$dumps/databases"
  as_user "$PG_NEW_BINDIR/pg_dumpall" -h "$PG_WORKDIR/socket" -p "$PG_PORT" -U "$PG_USER" \
    --globals-only --file="$dumps/globals.sql" >&2
  local db n=0
  while IFS= read -r db; do
    n=$((n + 1))
    printf '%s\n' "$db" >"$dumps/$n.name"
    as_user "$PG_NEW_BINDIR/pg_dump" -h "$PG_WORKDIR/socket" -p "$PG_PORT" -U "$PG_USER" \
      --format=custom --file="$dumps/$n.dump" "$db" >&2
  done <"$dumps/databases"
  stop_server "$PG_NEW_BINDIR" "$PG_NEW_DATADIR"
  log "dumped $n database(s) from $PG_NEW_DATADIR"

  # 2. A fresh cluster of the older version where the old one was (the old one is kept aside).
  if [ -e "$PG_OLD_DATADIR" ]; then move_aside "$PG_OLD_DATADIR" before-downgrade; fi
  owned_dir "$PG_OLD_DATADIR"
  log "initdb $PG_OLD_DATADIR with: $initdb_args"
  # shellcheck disable=SC2086
  as_user "$PG_OLD_BINDIR/initdb" -D "$PG_OLD_DATADIR" -U "$PG_USER" $initdb_args >&2
  start_server "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"

  # 3. Restore: roles first (the bootstrap user exists already), then each database with the
  #    newer pg_restore, which reads the archive format the newer pg_dump wrote.
  grep -v -x -e "CREATE ROLE $PG_USER;" "$dumps/globals.sql" >"$dumps/globals-filtered.sql" || true
  psql_as "$PG_OLD_BINDIR" postgres -f "$dumps/globals-filtered.sql" >&2
  local i name
  for ((i = 1; i <= n; i++)); do
    name=$(cat "$dumps/$i.name")
    if [ "$name" = postgres ]; then
      as_user "$PG_NEW_BINDIR/pg_restore" -h "$PG_WORKDIR/socket" -p "$PG_PORT" -U "$PG_USER" \
        --exit-on-error --dbname=postgres "$dumps/$i.dump" >&2
    else
      as_user "$PG_NEW_BINDIR/pg_restore" -h "$PG_WORKDIR/socket" -p "$PG_PORT" -U "$PG_USER" \
        --exit-on-error --create --dbname=postgres "$dumps/$i.dump" >&2
    fi
  done
  stop_server "$PG_OLD_BINDIR" "$PG_OLD_DATADIR"
  printf 'restored %s database(s) from %s\n' "$n" "$PG_NEW_DATADIR" >"$RESTORE_MARKER"
  sync -f "$RESTORE_MARKER" 2>/dev/null || sync
  # The newer cluster stays where it is: upgrading again starts from the restored old one, so
  # mark the newer one as not-current by moving it aside.
  move_aside "$PG_NEW_DATADIR" downgraded
  log "restored $n database(s) into a fresh $(major_of "$PG_OLD_BINDIR") cluster in $PG_OLD_DATADIR"
}

cmd_downgrade_done() { [ -e "$RESTORE_MARKER" ]; }

case "${1:-}" in
  upgrade) cmd_upgrade ;;
  upgrade-done) cmd_upgrade_done ;;
  downgrade) cmd_downgrade ;;
  downgrade-done) cmd_downgrade_done ;;
  *)
    echo "usage: bootstate-pg upgrade|upgrade-done|downgrade|downgrade-done (parameters in PG_* variables)" >&2
    exit 2
    ;;
esac

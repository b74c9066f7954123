#!/usr/bin/env bash
# bootstate-pg-resolve: the resolutions of the PostgreSQL version check (bootstate-pg-check;
# docs/CHECKS.md "PostgreSQL"). Each brings the data directory DIR to the major version of the
# configured server and keeps what was there aside, never deleted:
#
#   pg-upgrade      DIR older than the server: pg_upgrade (copy, or --link) into a fresh cluster
#                   of the server, then vacuumdb --analyze-in-stages
#   dump-restore    either direction: start the data's own server, dump with the NEWER of the
#                   two versions' tools, restore into a fresh cluster of the server
#   restore-backup  put back the copy of DIR from bootstate's backups (--backups-dir) whose
#                   PG_VERSION is the server's major (the newest such); runs as root, since
#                   bootstate's backups are root's
#   undo            reverse the last completed resolution by dump-restore to the major it found
#                   (what was written since survives); after an interrupted one, put the
#                   original directory back
#   done            exit 0 when DIR is at the server's major and no resolution is half done
#   undo-done       exit 0 when DIR is at the major the last resolution started from
#
# Options: --data-dir DIR --server-bindir BINDIR (the configured package's bin)
#          --bindir BINDIR (repeatable: other majors' packages; the one for a major is found by
#          asking each `postgres --version`) --link --backups-dir DIR --port N
# pg-upgrade, dump-restore and undo run as the cluster owner (the step's `user`).
#
# Interruption: the first thing a resolution does is record itself in DIR.bootstate/in-progress
# and rename DIR to DIR.bootstate-pgN-TIME (one rename). Run again, it finds the record, sets a
# half-built DIR aside as well and builds it anew from the recorded source; `done` is false
# until the record is gone. So each action is safe to re-run (the steps are `idempotent`).
set -euo pipefail

log() { printf 'bootstate-pg-resolve: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { echo "usage: bootstate-pg-resolve pg-upgrade|dump-restore|restore-backup|undo|done|undo-done --data-dir DIR --server-bindir BINDIR [--bindir BINDIR]... [--link] [--backups-dir DIR] [--port N]" >&2; exit 2; }

action=${1:-}
[ $# -gt 0 ] && shift
data_dir='' server_bindir='' link=0 backups_dir='' port=50432
bindirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) [ $# -ge 2 ] || usage; data_dir=${2%/}; shift 2 ;;
    --server-bindir) [ $# -ge 2 ] || usage; server_bindir=$2; shift 2 ;;
    --bindir) [ $# -ge 2 ] || usage; bindirs+=("$2"); shift 2 ;;
    --backups-dir) [ $# -ge 2 ] || usage; backups_dir=${2%/}; shift 2 ;;
    --port) [ $# -ge 2 ] || usage; port=$2; shift 2 ;;
    --link) link=1; shift ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
case $action in pg-upgrade | dump-restore | restore-backup | undo | done | undo-done) ;; *) usage ;; esac
[[ $data_dir == /* ]] || { log "--data-dir must be an absolute path"; usage; }
[ -n "$server_bindir" ] || { log "--server-bindir is required"; usage; }
# The paths are the machine's: under bootstate's --root (BOOTSTATE_ROOT, "/" on a machine), so
# tests can run the declared argv against a tree. bootstate's backup manifests name the path as
# declared, so that form is kept for find_backup.
root=${BOOTSTATE_ROOT:-/}
declared_data_dir=$data_dir
data_dir=${root%/}$data_dir
[ -z "$backups_dir" ] || backups_dir=${root%/}$backups_dir

state=$data_dir.bootstate # beside DIR: survives DIR being moved aside
in_progress=$state/in-progress
started=$(date +%s)

major_of() { # bindir → major version of its postgres
  "$1/postgres" --version | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}
bindir_for() { # major → the bindir whose server is of that major (server's first)
  local b
  for b in "$server_bindir" "${bindirs[@]}"; do
    if [ -x "$b/postgres" ] && [ "$(major_of "$b")" = "$1" ]; then printf '%s\n' "$b"; return 0; fi
  done
  die "no PostgreSQL $1 among --server-bindir $server_bindir and --bindir ${bindirs[*]:-(none)}: add that package (boot.state.postgresql.versionCheck.otherPackages)"
}
version_of_dir() { head -n 1 "$1/PG_VERSION" 2>/dev/null || true; }
durable() { sync -f "$1" 2>/dev/null || sync; } # the file and its directory entry

server_major=$(major_of "$server_bindir")
[ -n "$server_major" ] || die "$server_bindir/postgres --version gave no major version"

# --- checks: cheap, read only ------------------------------------------------------------------
if [ "$action" = "done" ]; then
  [ ! -e "$in_progress" ] && [ ! -e "$state/analyze-pending" ] && [ "$(version_of_dir "$data_dir")" = "$server_major" ]
  exit
fi
if [ "$action" = undo-done ]; then
  [ ! -e "$in_progress" ] && [ -f "$state/undo-to" ] && [ "$(version_of_dir "$data_dir")" = "$(cat "$state/undo-to")" ]
  exit
fi

# --- the running environment -------------------------------------------------------------------
# The cluster owner: whoever owns the data (or, mid-resolution, the recorded source).
owner_of=$data_dir
if [ ! -e "$owner_of" ] && [ -f "$in_progress" ]; then owner_of=$(sed -n 2p "$in_progress"); fi
[ -e "$owner_of" ] || owner_of=$(dirname "$data_dir")
owner=$(stat -c %U "$owner_of")
if [ "$action" != restore-backup ] && [ "$(id -u)" -eq 0 ]; then
  die "$action runs as the cluster owner, not root (the step's user; here: $owner)"
fi
owned_dir() { # a directory of the cluster owner, 0700 (initdb and the server insist)
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown "$owner:" "$1"; fi
  chmod 0700 "$1"
}
prepare_state() { # created only once a resolution really starts: a refusal leaves no trace
  owned_dir "$state"
  owned_dir "$state/socket"
  cd "$state"
  : >"$state/empty.conf" # the servers started here ignore DIR's postgresql.conf (it may be newer)
}

start_server() { # bindir datadir
  "$1/pg_ctl" -D "$2" -l "$state/server.log" -w -t 600 -o "-c config_file=$state/empty.conf \
-c listen_addresses= -c unix_socket_directories=$state/socket -p $port" start >&2 ||
    { tail -n 30 "$state/server.log" >&2 || true; die "cannot start PostgreSQL $(major_of "$1") on $2"; }
}
stop_server() { "$1/pg_ctl" -D "$2" -m fast -w -t 600 stop >&2; }
stop_if_running() { # a server an interrupted run left behind (only ever on our socket)
  if [ -f "$2/postmaster.pid" ] && "$1/pg_ctl" -D "$2" status >/dev/null 2>&1; then
    log "stopping the server an interrupted run left on $2"
    stop_server "$1" "$2"
  fi
}
psql_at() { "$1/psql" -X -q -v ON_ERROR_STOP=1 -h "$state/socket" -p "$port" -U "$owner" "${@:2}"; }
initdb_args_of() { # bindir (its server running): the encoding and locale to initdb with
  psql_at "$1" -d postgres -A -t -F ' ' -c "SELECT '--encoding=' || pg_encoding_to_char(encoding) \
|| ' --lc-collate=' || datcollate || ' --lc-ctype=' || datctype FROM pg_database WHERE datname = 'template0'"
}
move_aside() { # path label → prints the new name
  local to
  to=$1.bootstate-$2-$(date +%Y%m%d%H%M%S)-$$
  mv -- "$1" "$to"
  durable "$(dirname "$1")"
  log "kept $1 aside as $to"
}

# --- begin or resume: returns with $source (the data to bring over) and $target ---------------
begin() { # action target-major
  local recorded_action recorded_target
  if [ -e "$in_progress" ]; then
    prepare_state
    { read -r recorded_action recorded_target; IFS= read -r source; } <"$in_progress"
    [ "$recorded_action" = "$1" ] ||
      die "$recorded_action was interrupted on $data_dir (source $source): run it again, or undo"
    target=$recorded_target
    log "resuming the interrupted $1 from $source"
    [ -e "$source" ] || { [ -f "$data_dir/PG_VERSION" ] && mv -- "$data_dir" "$source"; } ||
      die "neither $source nor $data_dir exists"
    if [ -e "$data_dir" ]; then
      stop_if_running "$(bindir_for "$target")" "$data_dir"
      move_aside "$data_dir" incomplete
    fi
    return 0
  fi
  target=$2
  local from
  from=$(version_of_dir "$data_dir")
  [ -n "$from" ] || die "$data_dir is not a PostgreSQL data directory (no PG_VERSION)"
  if [ "$from" = "$target" ]; then log "$data_dir is already PostgreSQL $target"; exit 0; fi
  prepare_state
  source=$data_dir.bootstate-pg$from-$(date +%Y%m%d%H%M%S)
  [ ! -e "$source" ] || die "$source exists already"
  printf '%s %s\n%s\n' "$1" "$target" "$source" >"$in_progress.tmp"
  durable "$in_progress.tmp"
  mv -- "$in_progress.tmp" "$in_progress" && durable "$state"
  mv -- "$data_dir" "$source" && durable "$(dirname "$data_dir")"
  log "$1: $data_dir (PostgreSQL $from) kept aside as $source; building PostgreSQL $target"
}
record_undo=1 # 0 while undoing: undo-done compares against the major the forward run left
finish() { # source-major [analyze]: record what undo goes back to, then close the record
  if [ "$record_undo" = 1 ]; then
    printf '%s\n' "$1" >"$state/undo-to.tmp" && mv -- "$state/undo-to.tmp" "$state/undo-to"
    durable "$state/undo-to"
  fi
  if [ "${2:-}" = analyze ]; then : >"$state/analyze-pending" && durable "$state/analyze-pending"; fi
  rm -f -- "$in_progress" && durable "$state"
}

# --- the resolutions ---------------------------------------------------------------------------
do_dump_restore() { # source dir → a fresh cluster of $target in $data_dir
  local from from_bin to_bin tools dumps initdb_args n=0 db i name
  from=$(version_of_dir "$source")
  from_bin=$(bindir_for "$from")
  to_bin=$(bindir_for "$target")
  # pg_dump reads older servers, never newer ones: the newer version's tools do both sides.
  if [ "$from" -gt "$target" ]; then tools=$from_bin; else tools=$to_bin; fi
  for t in pg_dump pg_dumpall pg_restore psql; do
    [ -x "$tools/$t" ] || die "$tools has no $t (the PostgreSQL $(major_of "$tools") client tools are needed)"
  done
  stop_if_running "$from_bin" "$source"
  dumps=$state/dump
  rm -rf -- "$dumps" && owned_dir "$dumps"
  start_server "$from_bin" "$source"
  initdb_args=$(initdb_args_of "$tools")
  psql_at "$tools" -d postgres -A -t -c "SELECT datname FROM pg_database WHERE datallowconn AND \
datname NOT IN ('template0', 'template1') ORDER BY 1" >"$dumps/databases"
  "$tools/pg_dumpall" -h "$state/socket" -p "$port" -U "$owner" --globals-only --file="$dumps/globals.sql" >&2
  while IFS= read -r db; do
    n=$((n + 1))
    printf '%s\n' "$db" >"$dumps/$n.name"
    "$tools/pg_dump" -h "$state/socket" -p "$port" -U "$owner" --format=custom --file="$dumps/$n.dump" "$db" >&2
  done <"$dumps/databases"
  stop_server "$from_bin" "$source"
  log "dumped $n database(s) of PostgreSQL $from with the PostgreSQL $(major_of "$tools") tools ($(($(date +%s) - started)) s)"

  owned_dir "$data_dir"
  # shellcheck disable=SC2086 # encoding and locale words from initdb_args_of
  "$to_bin/initdb" -D "$data_dir" -U "$owner" $initdb_args >&2
  start_server "$to_bin" "$data_dir"
  # Roles first (the bootstrap superuser exists already), then each database.
  grep -v -x -e "CREATE ROLE $owner;" "$dumps/globals.sql" >"$dumps/globals-filtered.sql" || true
  psql_at "$tools" -d postgres -f "$dumps/globals-filtered.sql" >&2
  for ((i = 1; i <= n; i++)); do
    name=$(cat "$dumps/$i.name")
    if [ "$name" = postgres ]; then
      "$tools/pg_restore" -h "$state/socket" -p "$port" -U "$owner" --exit-on-error --dbname=postgres "$dumps/$i.dump" >&2
    else
      # --create's script, run by psql: the newer pg_restore writes CREATE DATABASE with
      # LOCALE_PROVIDER (PostgreSQL 15+), which an older server refuses; a libc provider is
      # what older servers do anyway, so that clause alone is dropped (before the first
      # \connect only: never in the data).
      "$tools/pg_restore" --create --exit-on-error -f - "$dumps/$i.dump" |
        awk -v drop="$([ "$target" -lt 15 ] && echo 1 || echo 0)" '
          !connected && /^\\connect / { connected = 1 }
          !connected && drop && /^CREATE DATABASE / {
            if ($0 ~ /LOCALE_PROVIDER = icu/) { print "ICU database locale: cannot go below PostgreSQL 15" > "/dev/stderr"; exit 3 }
            sub(/ LOCALE_PROVIDER = libc/, "")
          }
          { print }' |
        psql_at "$tools" -d postgres >&2
    fi
  done
  stop_server "$to_bin" "$data_dir"
  durable "$data_dir/PG_VERSION"
  log "restored $n database(s) into a fresh PostgreSQL $target cluster in $data_dir ($(($(date +%s) - started)) s)"
  finish "$from"
}

do_pg_upgrade() {
  local from old_bin new_bin initdb_args mode=()
  from=$(version_of_dir "$source")
  [ "$from" -lt "$target" ] || die "pg-upgrade only goes up (PostgreSQL $from to $target): choose dump-restore"
  old_bin=$(bindir_for "$from")
  new_bin=$(bindir_for "$target")
  for t in pg_upgrade initdb vacuumdb psql; do [ -x "$new_bin/$t" ] || die "$new_bin has no $t"; done
  # After an interrupted --link run, the old cluster's control file is renamed; the new one was
  # never started (that happens only after the record is closed), so renaming back is safe.
  if [ ! -e "$source/global/pg_control" ] && [ -e "$source/global/pg_control.old" ]; then
    mv -- "$source/global/pg_control.old" "$source/global/pg_control"
  fi
  stop_if_running "$old_bin" "$source"
  start_server "$old_bin" "$source"
  initdb_args=$(initdb_args_of "$new_bin")
  stop_server "$old_bin" "$source"
  owned_dir "$data_dir"
  # shellcheck disable=SC2086
  "$new_bin/initdb" -D "$data_dir" -U "$owner" $initdb_args >&2
  [ "$link" = 1 ] && mode=(--link) # copy is the default (--copy is spelled out only from 16 on)
  if ! "$new_bin/pg_upgrade" "${mode[@]}" --old-bindir="$old_bin" --new-bindir="$new_bin" \
    --old-datadir="$source" --new-datadir="$data_dir" --username="$owner" \
    --socketdir="$state/socket" --old-port="$port" --new-port="$port" \
    --old-options="-c config_file=$state/empty.conf" --new-options="-c config_file=$state/empty.conf" >&2; then
    die "pg_upgrade failed (its logs: $data_dir/pg_upgrade_output.d); $source is the original"
  fi
  log "pg_upgrade (${mode[*]:-copy}) PostgreSQL $from -> $target done ($(($(date +%s) - started)) s)"
  finish "$from" analyze
}

analyze_if_pending() { # statistics are not carried by pg_upgrade; best done before first use
  [ -e "$state/analyze-pending" ] || return 0
  local bin
  prepare_state
  bin=$(bindir_for "$server_major")
  stop_if_running "$bin" "$data_dir"
  start_server "$bin" "$data_dir"
  "$bin/vacuumdb" -h "$state/socket" -p "$port" -U "$owner" --all --analyze-in-stages >&2
  stop_server "$bin" "$data_dir"
  rm -f -- "$state/analyze-pending" && durable "$state"
  log "vacuumdb --analyze-in-stages done ($(($(date +%s) - started)) s)"
}

# shellcheck disable=SC2094 # the manifest is only read
find_backup() { # newest copy of $data_dir in bootstate's backups whose PG_VERSION is $target
  local manifest line i best='' best_time=0 t copy
  [ -d "$backups_dir" ] || die "no backups directory $backups_dir"
  for manifest in "$backups_dir"/*/manifest; do
    [ -f "$manifest" ] || continue
    i=-1
    while IFS= read -r line; do
      case $line in bootstate-backup*) continue ;; esac
      i=$((i + 1))
      [ "$line" = "+ $declared_data_dir" ] || continue
      copy=$(dirname "$manifest")/data/$i
      [ "$(version_of_dir "$copy")" = "$target" ] || continue
      t=$(stat -c %Y "$manifest")
      if [ "$t" -gt "$best_time" ]; then best=$copy best_time=$t; fi
    done <"$manifest"
  done
  [ -n "$best" ] || die "no backup of $data_dir at PostgreSQL $target in $backups_dir: choose dump-restore"
  printf '%s\n' "$best"
}

do_restore_backup() {
  local copy from
  from=$(version_of_dir "$source")
  copy=$(find_backup)
  log "restoring $data_dir from $copy"
  rm -rf -- "$data_dir.bootstate-restoring" # a partial copy of ours from an interrupted run
  cp -a -- "$copy" "$data_dir.bootstate-restoring"
  rm -f -- "$data_dir.bootstate-restoring/postmaster.pid"
  durable "$data_dir.bootstate-restoring/PG_VERSION"
  mv -- "$data_dir.bootstate-restoring" "$data_dir" && durable "$(dirname "$data_dir")"
  log "restored $data_dir (PostgreSQL $target) from bootstate's backup ($(($(date +%s) - started)) s)"
  finish "$from"
}

undo_interrupted() { # a forward resolution never finished: put its source back
  local recorded_action recorded_target
  prepare_state
  { read -r recorded_action recorded_target; IFS= read -r source; } <"$in_progress"
  [ -e "$source" ] || { rm -f -- "$in_progress"; return 0; } # never got as far as the rename
  if [ ! -e "$source/global/pg_control" ] && [ -e "$source/global/pg_control.old" ]; then
    mv -- "$source/global/pg_control.old" "$source/global/pg_control"
  fi
  if [ -e "$data_dir" ]; then move_aside "$data_dir" incomplete; fi
  mv -- "$source" "$data_dir" && durable "$(dirname "$data_dir")"
  rm -f -- "$in_progress" && durable "$state"
  log "undo: the interrupted $recorded_action is reverted, $data_dir is the original again"
}

# Refuses what cannot work before anything is moved: an error here changes nothing.
preflight() { # action target-major
  [ ! -e "$in_progress" ] || return 0 # resuming: the record decides
  local from
  # The old directory is kept aside by a rename in its parent.
  [ -w "$(dirname "$data_dir")" ] ||
    die "$(dirname "$data_dir") is not writable by $(id -un): the old data directory cannot be kept aside there"
  from=$(version_of_dir "$data_dir")
  [ -n "$from" ] || die "$data_dir is not a PostgreSQL data directory (no PG_VERSION)"
  [ "$from" != "$2" ] || return 0 # begin reports it as done
  case $1 in
    pg-upgrade) [ "$from" -lt "$2" ] || die "pg-upgrade only goes up (PostgreSQL $from to $2): choose dump-restore" ;;
    restore-backup) target=$2 && find_backup >/dev/null ;;
    *) bindir_for "$from" >/dev/null ;;
  esac
  bindir_for "$2" >/dev/null
}

case $action in
  dump-restore)
    preflight dump-restore "$server_major"
    begin dump-restore "$server_major"
    do_dump_restore
    ;;
  pg-upgrade)
    # Interrupted during the analysis: the upgrade itself is complete.
    if [ -e "$in_progress" ] || [ ! -e "$state/analyze-pending" ]; then
      preflight pg-upgrade "$server_major"
      begin pg-upgrade "$server_major"
      do_pg_upgrade
    fi
    analyze_if_pending
    ;;
  restore-backup)
    [ -n "$backups_dir" ] || die "restore-backup needs --backups-dir"
    preflight restore-backup "$server_major"
    begin restore-backup "$server_major"
    do_restore_backup
    ;;
  undo)
    if [ -e "$in_progress" ] && [ "$(head -n 1 "$in_progress" | cut -d' ' -f1)" != undo ]; then
      undo_interrupted
    else
      [ -e "$in_progress" ] || [ -f "$state/undo-to" ] || die "nothing to undo on $data_dir"
      to=$(cat "$state/undo-to" 2>/dev/null || true)
      preflight undo "${to:-0}"
      begin undo "${to:-0}"
      record_undo=0
      do_dump_restore
    fi
    ;;
esac

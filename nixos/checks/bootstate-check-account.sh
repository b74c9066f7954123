#!/bin/sh
# bootstate-check-account: docs/CHECKS.md "A user whose uid changes". The generation declares
# user NAME with uid UID and the directories NAME owns (its data). When the machine has NAME
# with another uid (in /etc/passwd, or as the owner of a declared directory: after NixOS'
# activation /etc/passwd already says UID, the files still carry the old uid), every file there
# would belong to whoever gets the old uid next.
#
#   bootstate-check-account ACTION --user NAME --uid UID --record-dir R [--dir DIR]...
#
#   check   print item lines (docs/DESIGN.md "Checks and resolutions"): error
#           `uid-NAME-OLD-to-UID` with resolution `chown-data`; error `uid-UID-taken` (another
#           name has UID: no resolution, the operator picks another uid); warning
#           `user-NAME-missing` (activation creates it). Exit 1 when /etc/passwd cannot be
#           read (bootstate reports a failed check, never a pass); exit 2 on bad arguments.
#   chown   the resolution's step: record the old uid in R/NAME (written, fsynced, renamed)
#           before changing a file, then give every file under DIR owned by the old uid to UID.
#   undo    its undo: give the files owned by UID back to the recorded uid, remove the record.
# Both steps are idempotent (a re-run after a power cut finds the record). Only files owned by
# the uid being moved change (-xdev; links as links, never followed); other owners stay.
# Paths are taken under $BOOTSTATE_ROOT (bootstate's --root; "/" on a machine).
set -eu

die() { echo "bootstate-check-account: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: bootstate-check-account check|chown|undo --user NAME --uid UID --record-dir DIR [--dir DIR]..."
action=$1
shift
user='' uid='' record_dir='' dirs=''
root=${BOOTSTATE_ROOT:-/}
root=${root%/}
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --user) user=$2 ;;
    --uid) uid=$2 ;;
    --record-dir) record_dir=$2 ;;
    --dir)
      case $2 in /*) ;; *) die "--dir must be absolute: $2" ;; esac
      case $2 in *'
'* | *'"'* | *\\*) die "--dir must not contain a newline, a quote or a backslash: $2" ;; esac
      dirs="$dirs${2%/}
" ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
case $user in '' | *[!a-z0-9_.-]*) die "--user must be a name of [a-z0-9_.-]: '$user'" ;; esac
[ ${#user} -le 32 ] || die "--user is longer than 32 characters: $user"
case $uid in '' | *[!0-9]*) die "--uid must be a number: '$uid'" ;; esac
case $record_dir in /*) ;; *) die "--record-dir must be absolute: '$record_dir'" ;; esac
record=$root$record_dir/$user

# A declared directory that is a symbolic link is neither followed (it may point anywhere) nor
# skipped (its files would keep the old uid unseen): the check fails, naming it.
set -f
old_ifs=$IFS
IFS='
'
for dir in $dirs; do
  if [ -L "$root$dir" ]; then
    echo "bootstate-check-account: $dir is a symbolic link: declare the directory it points to" >&2
    exit 1
  fi
done
IFS=$old_ifs
set +f

passwd=$root/etc/passwd
[ -r "$passwd" ] || { echo "bootstate-check-account: cannot read $passwd" >&2; exit 1; }
# NAME's uid in /etc/passwd (empty: none); whether another name has UID.
passwd_uid=$(awk -F: -v n="$user" '$1 == n { print $3; exit }' "$passwd")
taken=$(awk -F: -v n="$user" -v u="$uid" '$3 == u && $1 != n { print "yes"; exit }' "$passwd")

# Each declared directory that exists (links were refused above), under the root.
each_dir() {
  printf '%s' "$dirs" | while IFS= read -r dir; do
    if [ -d "$root$dir" ]; then "$@" "$root$dir"; fi
  done
}
# A directory's owner counts as NAME's old uid only when no account has it now (NixOS frees the
# old uid when it moves NAME): a directory of root's or another user's is theirs, not NAME's,
# and chowning it would hand their files to NAME.
owner_unless_uid() {
  owner=$(stat -c %u "$1")
  [ "$owner" != "$uid" ] || return 0
  awk -F: -v u="$owner" '$3 == u { found = 1 } END { exit found }' "$passwd" || return 0
  echo "$owner"
}
# sed, not head: it reads to the end, so no SIGPIPE fails the pipeline under pipefail (NixOS'
# writeShellApplication sets it).
first_owner_not_uid() { each_dir owner_unless_uid | sed -n 1p; }

# The old uid as the machine shows it: NAME's in /etc/passwd, else a declared directory's owner
# (the check looks at this only, never at the record: once the files moved, it is quiet).
old_uid() {
  if [ -n "$passwd_uid" ] && [ "$passwd_uid" != "$uid" ]; then
    echo "$passwd_uid"
  else
    first_owner_not_uid
  fi
}

give() { # FROM TO DIR: every file under DIR owned by FROM goes to TO
  find "$3" -xdev -uid "$1" -exec chown -h "$2" {} +
}

case $action in
  check)
    if [ -n "$taken" ]; then
      printf '{"id": "uid-%s-taken", "severity": "error", "message": "the generation gives %s uid %s, which another user has in /etc/passwd: the two would share every file", "resolutions": []}\n' \
        "$uid" "$user" "$uid"
    fi
    old=$(old_uid)
    if [ -n "$old" ] && [ "$old" != "$uid" ]; then
      shown=$(printf '%s' "$dirs" | tr '\n' ' ')
      printf '{"id": "uid-%s-%s-to-%s", "severity": "error", "message": "%s has uid %s on this machine, the generation gives it %s: its files in %s would belong to whoever gets uid %s", "resolutions": ["chown-data"], "default": "chown-data"}\n' \
        "$user" "$old" "$uid" "$user" "$old" "$uid" "${shown% }" "$old"
    elif [ -z "$passwd_uid" ] && [ -z "$taken" ]; then
      printf '{"id": "user-%s-missing", "severity": "warning", "message": "%s is not in /etc/passwd yet: the activation creates it with uid %s", "resolutions": []}\n' \
        "$user" "$user" "$uid"
    fi
    ;;
  chown)
    if [ ! -f "$record" ]; then
      old=$(old_uid)
      if [ -z "$old" ] || [ "$old" = "$uid" ]; then
        echo "no file of $user has another uid than $uid: nothing to change"
        exit 0
      fi
      mkdir -p "$root$record_dir"
      printf '%s\n' "$old" > "$record.tmp"
      sync "$record.tmp"
      mv -f "$record.tmp" "$record"
      sync "$root$record_dir"
    fi
    old=$(cat "$record")
    echo "files of $user under $(printf '%s' "$dirs" | tr '\n' ' '): uid $old -> $uid"
    each_dir give "$old" "$uid"
    ;;
  undo)
    [ -f "$record" ] || { echo "no record $record: the resolution changed nothing"; exit 0; }
    old=$(cat "$record")
    echo "files of $user: uid $uid -> $old (back)"
    each_dir give "$uid" "$old"
    rm -f "$record"
    sync "$root$record_dir"
    ;;
  *) die "unknown action: $action" ;;
esac

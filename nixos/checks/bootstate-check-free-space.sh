#!/bin/sh
# bootstate-check-free-space: docs/CHECKS.md "Free space for a backup". The generation's
# migrations declare `backup = [ PATH… ]`; bootstate copies those paths into BACKUPS (by
# default /var/lib/bootstate/backups) before their first step. This check adds up their size
# (du, one file system each) and compares it with what the file system holding BACKUPS has free.
#
#   bootstate-check-free-space --backups-dir BACKUPS [--margin-percent N] [--path PATH]...
#
# Items (docs/DESIGN.md "Checks and resolutions"):
#   error   `backup-does-not-fit`: the copies need more than is free;
#   warning `backup-leaves-little-space`: they fit, but leave less than N % (default 10) of
#           that file system free.
# Neither offers a resolution: the way to make room is to delete or move something, and
# which data may go is the operator's decision, not a migration's (docs/CHECKS.md says why).
# After making room: `bootstate retry --plan GEN CHECK`, or preview again.
# A PATH that does not exist counts 0 (bootstate records it as absent). Exit 1 when a size or
# the free space cannot be read (bootstate reports a failed check, never a pass); exit 2 on bad
# arguments. Paths are taken under $BOOTSTATE_ROOT (bootstate's --root; "/" on a machine).
set -eu

die() { echo "bootstate-check-free-space: $*" >&2; exit 2; }
broken() { echo "bootstate-check-free-space: $*" >&2; exit 1; }

backups='' margin=10 paths=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $2 in /*) ;; *) [ "$1" = --margin-percent ] || die "$1 must be absolute: '$2'" ;; esac
  case $2 in *'
'* | *'"'* | *\\*) die "$1 must not contain a newline, a quote or a backslash" ;; esac
  case $1 in
    --backups-dir) backups=${2%/} ;;
    --margin-percent) margin=$2 ;;
    --path) paths="$paths${2%/}
" ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
[ -n "$backups" ] || die "--backups-dir is required"
case $margin in '' | *[!0-9]*) die "--margin-percent must be a whole number: '$margin'" ;; esac
[ "$margin" -le 100 ] || die "--margin-percent must be at most 100: $margin"
root=${BOOTSTATE_ROOT:-/}
root=${root%/}

# KiB the copies take: du -s on the file system of each path (what bootstate copies).
need=0
for_each_path() {
  printf '%s' "$paths" | while IFS= read -r path; do
    if [ -e "$root$path" ] || [ -L "$root$path" ]; then
      out=$(du -skx -- "$root$path") || { echo failed; continue; }
      kib=${out%%[!0-9]*}
      echo "${kib:-failed}"
    fi
  done
}
sizes=$(for_each_path) || broken "du failed"
for size in $sizes; do
  case $size in *[!0-9]*) broken "cannot read the size of a backup path" ;; esac
  need=$((need + size))
done

# The file system BACKUPS will be on: the directory, else its nearest existing parent.
where=$root$backups
while [ ! -d "$where" ]; do where=$(dirname -- "$where"); done
# df -P: "Filesystem 1024-blocks Used Available Capacity Mounted-on", one line each.
df_line=$(df -Pk -- "$where" | awk 'NR == 2 { print $2, $4 }') || broken "df failed on $where"
total=${df_line% *} free=${df_line#* }
case "$total:$free" in :* | *: | *[!0-9:]*) broken "df printed no numbers for $where: $df_line" ;; esac

shown_where=${where#"$root"}
[ -n "$shown_where" ] || shown_where=/
if [ "$need" -gt "$free" ]; then
  printf '{"id": "backup-does-not-fit", "severity": "error", "message": "the backups this generation takes need %s KiB, the file system of %s has %s KiB free: free %s KiB or more there, then retry", "resolutions": []}\n' \
    "$need" "$shown_where" "$free" "$((need - free))"
elif [ $(((free - need) * 100)) -lt $((total * margin)) ]; then
  printf '{"id": "backup-leaves-little-space", "severity": "warning", "message": "the backups this generation takes need %s KiB of the %s KiB free on the file system of %s, leaving less than %s %% of it free", "resolutions": []}\n' \
    "$need" "$free" "$shown_where" "$margin"
fi

#!/bin/sh
# bootstate-check-kernel: docs/CHECKS.md "A kernel feature the running kernel lacks". The
# generation needs file system types and kernel options (its own kernel, release REL, has them);
# the kernel running now may not: a live switch would start the generation's units on it.
#
#   bootstate-check-kernel check|verify --kernel-release REL [--filesystem TYPE]... [--config CONFIG_X]...
#
# A file system type is there when /proc/filesystems lists it, or when the running kernel's
# config has it as a module (CONFIG_..=m is not listed before it is loaded: name that option
# with --config then); a --config option is there when /proc/config.gz has it =y or =m.
#   check   prints item lines (docs/DESIGN.md "Checks and resolutions"), nothing when all are
#           there. Running kernel != REL: error `running-kernel-lacks-features`, resolution
#           `reboot-into-new-kernel` (its step runs in an initrd phase, so only a boot of the
#           generation, with its kernel, gets past it). Running kernel = REL: error
#           `kernel-REL-lacks-features`, no resolution (a reboot would not help).
#   verify  that resolution's step: exit 0 when the running kernel has every feature, else 1
#           naming what is missing (the boot then fails and falls back).
# Exit 1 when /proc/filesystems, /proc/sys/kernel/osrelease or (with --config) /proc/config.gz
# cannot be read: bootstate reports the check as failed, never as passed. Exit 2 on bad
# arguments. Paths are taken under $BOOTSTATE_ROOT (bootstate's --root; "/" on a machine).
set -eu

die() { echo "bootstate-check-kernel: $*" >&2; exit 2; }
broken() { echo "bootstate-check-kernel: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bootstate-check-kernel check|verify --kernel-release REL [--filesystem TYPE]... [--config CONFIG_X]..."
action=$1
shift
case $action in check | verify) ;; *) die "unknown action: $action" ;; esac
release='' filesystems='' configs=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --kernel-release) release=$2 ;;
    --filesystem)
      case $2 in '' | *[!a-z0-9_.-]*) die "--filesystem must be a type of [a-z0-9_.-]: '$2'" ;; esac
      filesystems="$filesystems $2" ;;
    --config)
      case $2 in CONFIG_*) ;; *) die "--config must name a CONFIG_ option: '$2'" ;; esac
      case ${2#CONFIG_} in '' | *[!A-Z0-9_]*) die "--config must be CONFIG_[A-Z0-9_]: '$2'" ;; esac
      configs="$configs $2" ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
case $release in '' | *[!A-Za-z0-9._+-]*) die "--kernel-release must be of [A-Za-z0-9._+-]: '$release'" ;; esac
root=${BOOTSTATE_ROOT:-/}
root=${root%/}

running=$(cat "$root/proc/sys/kernel/osrelease") || broken "cannot read /proc/sys/kernel/osrelease"
known=$(cat "$root/proc/filesystems") || broken "cannot read /proc/filesystems"
# The running kernel's configuration, read once, only when an option is asked for or a file
# system type is not listed (it may be a module not loaded yet).
config=
config_read=no
read_config() {
  [ "$config_read" = no ] || return 0
  if [ -r "$root/proc/config.gz" ]; then
    config=$(gzip -dc "$root/proc/config.gz") || broken "cannot decompress /proc/config.gz"
  elif [ -n "$configs" ]; then
    broken "cannot read /proc/config.gz (the running kernel has no CONFIG_IKCONFIG_PROC?)"
  fi
  config_read=yes
}
# A match in the shell, not `| grep -q`: grep stopping at the first match would fail the
# pipeline with SIGPIPE under pipefail (NixOS' writeShellApplication sets it).
has_config() {
  case "
$config
" in
    *"
$1=y
"* | *"
$1=m
"*) return 0 ;;
  esac
  return 1
}

missing=
for fs in $filesystems; do
  if printf '%s\n' "$known" | awk -v t="$fs" '$NF == t { found = 1 } END { exit !found }'; then
    continue
  fi
  read_config
  # A module for it: CONFIG_<TYPE>_FS=m, the kernel's naming of most file systems.
  upper=$(printf '%s' "$fs" | tr 'a-z.-' 'A-Z__')
  if has_config "CONFIG_${upper}_FS"; then continue; fi
  missing="$missing file system $fs,"
done
for option in $configs; do
  read_config
  has_config "$option" || missing="$missing $option,"
done
missing=${missing%,}

if [ "$action" = verify ]; then
  [ -z "$missing" ] && { echo "the running kernel $running has every feature the generation needs"; exit 0; }
  echo "the running kernel $running lacks:$missing" >&2
  exit 1
fi

[ -z "$missing" ] && exit 0
if [ "$running" = "$release" ]; then
  id=$(printf 'kernel-%s-lacks-features' "$release" | tr 'A-Z+' 'a-z-' | cut -c 1-64)
  printf '{"id": "%s", "severity": "error", "message": "the generation'"'"'s own kernel %s lacks:%s; rebooting would not help", "resolutions": []}\n' \
    "$id" "$release" "$missing"
else
  printf '{"id": "running-kernel-lacks-features", "severity": "error", "message": "the running kernel %s lacks:%s; the generation'"'"'s kernel %s is needed: boot into it (nixos-rebuild boot, then reboot)", "resolutions": ["reboot-into-new-kernel"], "default": "reboot-into-new-kernel"}\n' \
    "$running" "$missing" "$release"
fi

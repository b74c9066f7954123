#!/usr/bin/env bash
# bootstate-gcroots: keeps the programs of applied migrations alive in the Nix store.
#
# A migration's undo steps run in a generation that may not contain them (the one that
# introduced the migration can be garbage-collected meanwhile); bootstate keeps their
# definitions, this keeps the store paths those definitions name. The root is the plan template
# of a generation (its references are every program and cabinet the plan names).
#
#   bootstate-gcroots add TEMPLATE                      root TEMPLATE (before the phase runs)
#   bootstate-gcroots prune TEMPLATE BOOTSTATE [ARG...] drop roots none of whose migrations is
#                                                       still applied, running or failed
#                                                       according to `BOOTSTATE ARG... --json status`
# Roots live in $BOOTSTATE_GCROOTS_DIR (default /nix/var/nix/gcroots/bootstate).
set -euo pipefail

dir=${BOOTSTATE_GCROOTS_DIR:-/nix/var/nix/gcroots/bootstate}

root_name() { basename -- "$1"; }

cmd_add() {
  local template=$1
  [ -e "$template" ] || { echo "bootstate-gcroots: $template does not exist" >&2; exit 1; }
  mkdir -p -- "$dir"
  ln -sfn -- "$template" "$dir/$(root_name "$template")"
}

cmd_prune() {
  local current=$1
  shift
  local status
  if ! status=$("$@" --json status); then
    echo "bootstate-gcroots: cannot read the state; keeping every root" >&2
    return 0
  fi
  # Migrations whose undo may still be needed.
  local live
  live=$(jq -r '.migrations[]? | select(.state == "applied" or .state == "running" or .state == "failed") | .id' <<<"$status")
  local link target id keep
  for link in "$dir"/*; do
    [ -L "$link" ] || continue
    target=$(readlink -- "$link")
    if [ "$target" = "$current" ]; then continue; fi
    keep=no
    if [ -e "$target" ]; then
      while IFS= read -r id; do
        if [ -n "$id" ] && grep -qxF -- "$id" <<<"$live"; then keep=yes; break; fi
      done < <(jq -r '.migrations[]?.id' "$target")
    fi
    if [ "$keep" = no ]; then
      echo "bootstate-gcroots: dropping $link (no migration of it is applied any more)" >&2
      rm -f -- "$link"
    fi
  done
}

case "${1:-}" in
  add) [ $# -eq 2 ] || { echo "usage: bootstate-gcroots add TEMPLATE" >&2; exit 2; }; cmd_add "$2" ;;
  prune) [ $# -ge 3 ] || { echo "usage: bootstate-gcroots prune TEMPLATE BOOTSTATE [ARG...]" >&2; exit 2; }; shift; cmd_prune "$@" ;;
  *) echo "usage: bootstate-gcroots add TEMPLATE | prune TEMPLATE BOOTSTATE [ARG...]" >&2; exit 2 ;;
esac

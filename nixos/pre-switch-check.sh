#!/usr/bin/env bash
# bootstate-pre-switch-check: the system.preSwitchChecks fragment of the bootstate module.
#
#   bootstate-pre-switch-check NEW_TOPLEVEL ACTION BOOTSTATE [ARG...]
#
# Shows `bootstate preview NEW_TOPLEVEL` and refuses when:
#   - the preview reports a blocker (exit 1) or cannot read the plan (exit 2), for any action
#     but dry-activate;
#   - ACTION is a live one (switch, test) and the new plan has initrd-phase work that is not
#     done yet: that work can only run during a boot, so a live switch would run the
#     post-activation steps without it. Use `nixos-rebuild boot` and reboot instead.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: bootstate-pre-switch-check NEW_TOPLEVEL ACTION BOOTSTATE [ARG...]" >&2
  exit 2
fi
new=$1 action=$2
shift 2
plan=$new/bootstate/plan.json

if [ "$action" = dry-activate ]; then exit 0; fi
if [ ! -e "$plan" ]; then
  echo "bootstate: $new has no bootstate plan; not checked" >&2
  exit 0
fi

rc=0
"$@" preview "$new" || rc=$?
case $rc in
  0) ;;
  1) echo "bootstate: booting $new is blocked (see the preview above); not switching" >&2; exit 1 ;;
  *) echo "bootstate: preview of $new failed (exit $rc); not switching" >&2; exit 1 ;;
esac

case "$action" in
  switch | test) ;;
  *) exit 0 ;;
esac

if ! status=$("$@" --json status); then
  echo "bootstate: cannot read the state to decide whether initrd work is pending; not switching" >&2
  exit 1
fi
# Migrations of the new plan (not optional: those wait for `bootstate accept`) that are not
# applied or declined yet and still have a step in an initrd phase that is not done.
pending=$(jq -r --argjson status "$status" '
  ([ $status.migrations[]? | select(.state == "applied" or .state == "declined") | .id ]) as $settled
  | ([ $status.migrations[]? as $m | $m.steps[]? | select(.state == "done" or .state == "skipped")
       | "\($m.id)/\(.id)" ]) as $done
  | .migrations[]
  | select(.policy != "optional")
  | . as $m
  | select(($settled | index($m.id)) == null)
  | select(any(.steps[]; .id as $sid | .phase != "post-activation" and (($done | index("\($m.id)/\($sid)")) == null)))
  | "\(.id) (\([.steps[] | select(.phase != "post-activation") | "\(.id): \(.phase)"] | join(", ")))"
' "$plan")
if [ -n "$pending" ]; then
  {
    echo "bootstate: $new has work that runs only while booting:"
    while IFS= read -r line; do echo "  $line"; done <<<"$pending"
    echo "A live '$action' cannot run it. Use 'nixos-rebuild boot' and reboot."
  } >&2
  exit 1
fi

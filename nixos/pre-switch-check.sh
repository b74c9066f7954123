#!/usr/bin/env bash
# bootstate-pre-switch-check: the system.preSwitchChecks fragment of the bootstate module.
#
#   bootstate-pre-switch-check NEW_TOPLEVEL ACTION BOOTSTATE [ARG...]
#
# Shows `bootstate preview NEW_TOPLEVEL` and refuses, from `bootstate --json preview`, when:
#   - the preview reports a blocker (`blocked`: an unresolved error item of a check, a held
#     migration, …) or cannot read the plan (exit 2), for any action but dry-activate; the
#     blockers are repeated with the commands that resolve them (`bootstate choose --plan …`);
#   - ACTION is a live one (switch, test) and booting the new generation has initrd-phase
#     work (`initrd_work`: forward steps or the undo of a stale migration): that work can only
#     run during a boot. Use `nixos-rebuild boot` and reboot instead.
#   - ACTION is empty: switch-to-configuration before the action was passed as $2 (older
#     nixpkgs) gives none, and `nixos-rebuild switch` is one of the callers then; refusing is the
#     safe reading (a needless refusal costs a `nixos-rebuild boot`; a wrong pass skips the
#     initrd work), and the message says so.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: bootstate-pre-switch-check NEW_TOPLEVEL ACTION BOOTSTATE [ARG...]" >&2
  exit 2
fi
new=$1 action=$2
shift 2
if [ -z "$action" ]; then
  echo "bootstate: switch-to-configuration did not say which action this is (older nixpkgs);" \
    "checking it as a live 'switch'" >&2
  action=switch
  unnamed=true
else
  unnamed=false
fi
# BOOTSTATE_TREE: only for tests that give BOOTSTATE `--root TREE` (the generation's path is then
# inside TREE); empty on a machine.
plan=${BOOTSTATE_TREE:-}$new/bootstate/plan.json

if [ "$action" = dry-activate ]; then exit 0; fi
if [ ! -e "$plan" ]; then
  echo "bootstate: $new has no bootstate plan; not checked" >&2
  exit 0
fi

# What booting it will do, for the person running nixos-rebuild; the decision below comes from
# the same preview as data (`--json`: blocked, initrd_work, actions[]).
"$@" preview "$new" || true
rc=0
report=$("$@" --json preview "$new") || rc=$?
case $rc in
  0 | 1) ;;
  *) echo "bootstate: preview of $new failed (exit $rc); not switching" >&2; exit 1 ;;
esac
if [ "$(jq -r '.blocked' <<<"$report")" = true ]; then
  {
    echo "bootstate: booting $new is blocked; not switching:"
    # Each blocker names what resolves it (for a check's error item: the `bootstate choose
    # --plan …` commands, which work before the generation is booted).
    jq -r '(.blockers // [])[] | "  " + .' <<<"$report"
  } >&2
  exit 1
fi

case "$action" in
  switch | test) ;;
  *) exit 0 ;;
esac

# Work in an initrd phase (forward steps, or the undo of a stale migration) runs only while
# booting; a live switch would run the post-activation steps without it.
if [ "$(jq -r '.initrd_work' <<<"$report")" = true ]; then
  {
    echo "bootstate: $new has work that runs only while booting:"
    jq -r '.actions[] | select(.phase != "post-activation")
           | "  boot \(.boot), \(.phase): \(.action) \(.migration)\(if .step then "/" + .step else "" end)"' <<<"$report"
    if $unnamed; then
      echo "The action was not named, so it may be a live switch, which cannot run it."
    else
      echo "A live '$action' cannot run it."
    fi
    echo "Use 'nixos-rebuild boot' and reboot."
  } >&2
  exit 1
fi

#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016 # `check && ok || ko`: ok only echoes; literal $-words of fragments
# The module's helper scripts (nixos/pre-switch-check.sh, nixos/gcroots.sh) against a stub
# bootstate that answers `preview` and `--json status` from files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nixos=$(cd "$here/../../nixos" && pwd)
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "ok - $*"; }
ko() { echo "not ok - $*"; failures=$((failures + 1)); }

cat >"$tmp/bootstate" <<STUB
#!/usr/bin/env bash
# stub: preview exits with \$(cat $tmp/preview-rc) and prints $tmp/preview.json with --json;
# status prints $tmp/status.json
json=false
for a in "\$@"; do
  case \$a in
    --json) json=true ;;
    preview) if \$json; then cat "$tmp/preview.json"; else echo "preview: (stub)"; fi
             exit "\$(cat $tmp/preview-rc)" ;;
    status) cat "$tmp/status.json"; exit 0 ;;
  esac
done
exit 2
STUB
chmod +x "$tmp/bootstate"

new=$tmp/toplevel
mkdir -p "$new/bootstate"
cat >"$new/bootstate/plan.json" <<'JSON'
{"schema":1,"generation":"/x","migrations":[
 {"id":"grow","policy":"required","steps":[{"id":"g","phase":"initrd-pre-mount","kind":"storage","operations":[{"op":"require","device":"/dev/vda"}]}]},
 {"id":"db","policy":"required","steps":[{"id":"u","phase":"post-activation","kind":"command","command":["/bin/true"]}]},
 {"id":"opt","policy":"optional","steps":[{"id":"o","phase":"pre-switch-root","kind":"command","command":["/bin/true"]}]}]}
JSON
check() { "$nixos/pre-switch-check.sh" "$new" "$1" "$tmp/bootstate" --esp /boot >"$tmp/out" 2>&1; }

initrd='{"blocked":false,"initrd_work":true,"actions":[{"boot":1,"phase":"initrd-pre-mount","action":"run","migration":"grow","step":"g"},{"boot":1,"phase":"post-activation","action":"run","migration":"db","step":"u"}]}'
live='{"blocked":false,"initrd_work":false,"actions":[{"boot":1,"phase":"post-activation","action":"run","migration":"db","step":"u"}]}'
echo 0 >"$tmp/preview-rc"
echo "$initrd" >"$tmp/preview.json"
if check switch; then ko "switch with pending initrd work refused"; else grep -q "nixos-rebuild boot" "$tmp/out" && grep -q "initrd-pre-mount: run grow/g" "$tmp/out" && ! grep -q "db/u" "$tmp/out" && ok "switch with pending initrd work refused, naming it" || { ko "refusal message"; cat "$tmp/out"; }; fi
if check boot; then ok "boot is allowed with pending initrd work"; else ko "boot allowed"; cat "$tmp/out"; fi
if check dry-activate; then ok "dry-activate is never refused"; else ko "dry-activate"; fi
# Older switch-to-configuration-ng passed no action ($2 empty): read as a live switch, and said.
if check ""; then ko "an empty action with pending initrd work is refused"; else grep -q "did not say which action" "$tmp/out" && grep -q "nixos-rebuild boot" "$tmp/out" && grep -q "initrd-pre-mount: run grow/g" "$tmp/out" && ok "an empty action with pending initrd work is refused, saying why" || { ko "empty-action refusal message"; cat "$tmp/out"; }; fi
# The module's own fragment (system.preSwitchChecks.bootstate in nixos/module.nix, its Nix
# interpolations rendered), wrapped as nixpkgs' pre-switch-check.nix wraps every fragment
# (a subshell, then `$? != 0` fails the switch), and run as switch-to-configuration runs the
# script: with the toplevel and the action, with an empty action, and with no $2 at all; under
# nounset, which the fragment must survive without $2 (a writeShellApplication wrapper has it).
fragment=$(sed -n "/^      system.preSwitchChecks.bootstate = ''\$/,/^      '';\$/p" "$nixos/module.nix" | sed '1d;$d')
fragment=${fragment//"''\${"/"\${"} # Nix's escape of ${ inside ''…''
fragment=${fragment//'${preSwitchCheck}/bin/bootstate-pre-switch-check'/'"$NIXOS/pre-switch-check.sh"'}
fragment=${fragment//'${bootstateCli}'/'"$STUB"'}
fragment=${fragment//'${cfg.espMountPoint}'/\/boot}
case $fragment in
  *pre-switch-check.sh*'"$1"'*) ;;
  *) ko "cannot render the module's pre-switch fragment: $fragment" ;;
esac
grep -q '\${[a-zA-Z]' <<<"$fragment" && ko "an interpolation the test does not render: $fragment"
printf '(\n%s\n)\nif [[ $? != 0 ]]; then echo "Pre-switch check failed"; exit 1; fi\n' "$fragment" >"$tmp/checks.sh"
checks() { NIXOS=$nixos STUB=$tmp/bootstate bash -u "$tmp/checks.sh" "$@" >"$tmp/out" 2>&1; }
if checks "$new"; then ko "the module's fragment without \$2 refuses"; else grep -q "did not say which action" "$tmp/out" && ok "the module's fragment without \$2 (nounset) reaches the check and refuses" || { ko "fragment without \$2"; cat "$tmp/out"; }; fi
for action in "" switch test; do
  if checks "$new" "$action"; then ko "the module's fragment refuses '$action' with initrd work"; else grep -q "nixos-rebuild boot" "$tmp/out" && ok "the module's fragment refuses '$action' with initrd work" || { ko "fragment '$action'"; cat "$tmp/out"; }; fi
done
for action in boot dry-activate; do
  if checks "$new" "$action"; then ok "the module's fragment allows '$action' with initrd work"; else ko "fragment '$action'"; cat "$tmp/out"; fi
done
echo "$live" >"$tmp/preview.json"
if check switch; then ok "switch allowed when only post-activation work is left"; else ko "switch with stage-2 work"; cat "$tmp/out"; fi
if check test; then ok "test allowed when only post-activation work is left"; else ko "test"; cat "$tmp/out"; fi
if check ""; then ok "an empty action is allowed when only post-activation work is left"; else ko "empty action, stage-2 work"; cat "$tmp/out"; fi
echo 1 >"$tmp/preview-rc"
echo '{"blocked":true,"initrd_work":false,"actions":[]}' >"$tmp/preview.json"
if check boot; then ko "a blocker refuses boot"; else grep -q blocked "$tmp/out" && ok "a blocker refuses boot" || ko "blocker message"; fi
echo 2 >"$tmp/preview-rc"
if check boot; then ko "an unreadable plan refuses"; else ok "an unreadable plan refuses"; fi
rm "$new/bootstate/plan.json"
if check switch; then ok "a generation without a plan is not checked"; else ko "no plan"; fi

# gcroots
export BOOTSTATE_GCROOTS_DIR=$tmp/gcroots
mkdir -p "$tmp/store"
echo '{"migrations":[{"id":"grow"},{"id":"db"}]}' >"$tmp/store/a-plan-template.json"
echo '{"migrations":[{"id":"old"}]}' >"$tmp/store/b-plan-template.json"
echo '{"migrations":[{"id":"cur"}]}' >"$tmp/store/c-plan-template.json"
for t in a b c; do "$nixos/gcroots.sh" add "$tmp/store/$t-plan-template.json"; done
[ "$(readlink "$tmp/gcroots/a-plan-template.json")" = "$tmp/store/a-plan-template.json" ] && ok "add makes a root" || ko "add"
echo '{"migrations":[{"id":"db","state":"applied"},{"id":"old","state":"undone"}]}' >"$tmp/status.json"
"$nixos/gcroots.sh" prune "$tmp/store/c-plan-template.json" "$tmp/bootstate" --esp /boot 2>/dev/null
[ -L "$tmp/gcroots/a-plan-template.json" ] && ok "a root with an applied migration is kept" || ko "keep applied"
[ ! -e "$tmp/gcroots/b-plan-template.json" ] && ok "a root whose migrations are undone is dropped" || ko "drop undone"
[ -L "$tmp/gcroots/c-plan-template.json" ] && ok "the current plan's root is kept" || ko "keep current"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }

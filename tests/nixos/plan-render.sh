#!/usr/bin/env bash
# Evaluates tests/nixos/plan-example.nix (nixos/lib/plan.nix + helpers.nix, builtins only) and
# checks that the C++ parser accepts both copies the module writes: the toplevel one (with
# the placeholder substituted as system.systemBuilderCommands does) and the initrd one, and
# that their migration digests are identical (only `generation` differs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checker=${1:?usage: plan-render.sh PLAN_CHECK}
if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "SKIP: nix-instantiate is not installed (apt-get install nix-bin)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
eval_attr() { nix-instantiate --eval --strict --json -A "$1" "$here/plan-example.nix" 2>/dev/null; }
[ "$(eval_attr placeholder)" = true ]
# --json prints the string as a JSON string; decode it to the document text.
eval_attr toplevel | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin))' >"$tmp/template.json"
eval_attr initrd | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin))' >"$tmp/initrd.json"
sed 's|@bootstateToplevel@|/nix/store/00000000000000000000000000000000-nixos-system-test|' "$tmp/template.json" >"$tmp/plan.json"
"$checker" "$tmp/plan.json" | tee "$tmp/toplevel.out"
"$checker" "$tmp/initrd.json" | tee "$tmp/initrd.out"
grep -q '^generation /nix/store/0*-nixos-system-test$' "$tmp/toplevel.out"
grep -q '^generation /run/booted-system$' "$tmp/initrd.out"
diff <(grep '^migration' "$tmp/toplevel.out") <(grep '^migration' "$tmp/initrd.out")
[ "$(grep -c '^migration' "$tmp/toplevel.out")" -eq 3 ]
# A broken definition is rejected with its JSON path (the module's assertions catch it first;
# this shows the parser agrees on what is invalid).
python3 - "$tmp/plan.json" "$tmp/bad.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan["migrations"][1]["steps"][0]["phase"] = "pre-mount"
json.dump(plan, open(sys.argv[2], "w"))
PY
if "$checker" "$tmp/bad.json" 2>"$tmp/bad.err"; then echo "invalid plan accepted"; exit 1; fi
grep -q 'migrations\[1\].steps\[0\].phase' "$tmp/bad.err"
# A migration's resolutions are rendered as given, and the parser validates them: one without
# steps is refused, naming it.
python3 - "$tmp/plan.json" "$tmp/bad-resolution.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
resolutions = plan["migrations"][1]["resolutions"]
assert [r["id"] for r in resolutions] == ["free-space"], resolutions
assert "resolutions" not in plan["migrations"][0], "left out when none"
del resolutions[0]["steps"]
json.dump(plan, open(sys.argv[2], "w"))
PY
if "$checker" "$tmp/bad-resolution.json" 2>"$tmp/bad-resolution.err"; then
  echo "a resolution without steps accepted"; exit 1
fi
grep -q 'migrations\[1\].resolutions\[0\]' "$tmp/bad-resolution.err" || { cat "$tmp/bad-resolution.err"; exit 1; }
echo "plan rendering agrees with the parser"

#!/usr/bin/env bash
# Evaluates nixos/module.nix with nixpkgs' real module system and feeds every generated plan to
# the C++ plan parser. A developer tool (docs/NIXOS.md "Verified how"), not a ctest: CI has no
# nixpkgs lib.
#   tests/nixos/eval-module.sh NIXPKGS_LIB_DIR [PLAN_CHECK]
# NIXPKGS_LIB_DIR is a nixpkgs `lib` directory (its default.nix); PLAN_CHECK the plan_check
# binary (default: build-nixeval/tests/nixos/plan_check, then build/tests/nixos/plan_check).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
libdir=$(cd "${1:?usage: eval-module.sh NIXPKGS_LIB_DIR [PLAN_CHECK]}" && pwd)
checker=${2:-}
if [ -z "$checker" ]; then
  for c in "$root/build-nixeval/tests/nixos/plan_check" "$root/build/tests/nixos/plan_check"; do
    [ -x "$c" ] && { checker=$c; break; }
  done
fi
[ -x "$checker" ] || { echo "no plan_check binary (ninja -C BUILD plan_check)"; exit 2; }
command -v nix-instantiate >/dev/null || { echo "nix-instantiate is not installed"; exit 2; }
out=${EVAL_MODULE_OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "results in $out"

ev() { nix-instantiate --eval --strict --json --arg nixpkgsLib "$libdir" -A "$1" "$here/eval-module.nix" 2> >(grep -v build-users-group >&2); }

failed=0
mapfile -t good < <(nix-instantiate --eval --strict --json \
  -E "builtins.attrNames (import $here/eval-module.nix { nixpkgsLib = $libdir; }).good" 2>/dev/null |
  python3 -c 'import json,sys; print(*json.load(sys.stdin), sep=chr(10))')
[ "${#good[@]}" -gt 0 ] || { echo "cannot list the configurations (evaluation failed?)"; exit 1; }

for name in "${good[@]}"; do
  if ! ev "good.$name" >"$out/$name.json"; then
    echo "FAIL $name: evaluation failed"; failed=$((failed + 1)); continue
  fi
  # Assertions, plan files (the template with the generation substituted as
  # system.systemBuilderCommands does, and the initrd copy), argv[0] in the store.
  if ! python3 - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
d = json.load(open(f"{out}/{name}.json"))
bad = d.get("failedAssertions", [])
if bad:
    print(f"FAIL {name}: failed assertions: {bad}"); sys.exit(1)
if "planTemplate" not in d:
    sys.exit(0)
toplevel = "/nix/store/00000000000000000000000000000000-nixos-system-" + name
if d["planTemplate"].count("@bootstateToplevel@") != 1:
    print(f"FAIL {name}: the template has no single generation placeholder"); sys.exit(1)
open(f"{out}/{name}.plan.json", "w").write(d["planTemplate"].replace("@bootstateToplevel@", toplevel))
open(f"{out}/{name}.initrd-plan.json", "w").write(d["initrdPlan"])
plan = json.loads(d["planTemplate"])
for m in plan["migrations"]:
    for s in m["steps"] + m.get("undo", []):
        for key in ("command", "check"):
            if key in s and not s[key][0].startswith("/nix/store/"):
                print(f"FAIL {name}: {m['id']}.{s['id']}.{key}[0] is not in the store: {s[key][0]}"); sys.exit(1)
# A migration's resolution steps of an initrd phase have their program in the initrd.
initrd_phases = ("initrd-pre-mount", "pre-switch-root")
for m in plan["migrations"]:
    for r in m.get("resolutions", []):
        for s in r.get("steps", []) + r.get("undo", []):
            if s.get("phase") in initrd_phases and "command" in s and s["command"][0] not in d["storePaths"]:
                print(f"FAIL {name}: {m['id']}.{r['id']}.{s['id']}: {s['command'][0]} not in the initrd's storePaths"); sys.exit(1)
# The substitution the toplevel builder performs names the right placeholder.
if "--subst-var-by bootstateToplevel" not in d["systemBuilderCommands"]:
    print(f"FAIL {name}: systemBuilderCommands does not substitute bootstateToplevel"); sys.exit(1)
if d["initrdContents"]["/etc/bootstate/plan.json"]["source"] == d["planTemplatePath"]:
    print(f"FAIL {name}: the initrd carries the template"); sys.exit(1)
PY
  then failed=$((failed + 1)); continue; fi
  if [ -f "$out/$name.plan.json" ]; then
    if ! "$checker" "$out/$name.plan.json" >"$out/$name.plan.out" 2>&1 ||
       ! "$checker" "$out/$name.initrd-plan.json" >"$out/$name.initrd-plan.out" 2>&1; then
      echo "FAIL $name: plan_check rejected a plan:"; cat "$out/$name".*plan.out; failed=$((failed + 1)); continue
    fi
    if ! diff <(grep '^migration' "$out/$name.plan.out") <(grep '^migration' "$out/$name.initrd-plan.out") >/dev/null; then
      echo "FAIL $name: migration digests differ between the toplevel and initrd copies"; failed=$((failed + 1)); continue
    fi
    echo "ok $name ($(grep -c '^migration' "$out/$name.plan.out") migration(s), both copies parsed)"
  else
    echo "ok $name (boot.state disabled)"
  fi
done

if ev bad >"$out/bad.json"; then
  python3 - "$out/bad.json" <<'PY' || failed=$((failed + 1))
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for name, r in sorted(d.items()):
    if any(r["expect"] in m for m in r["failedAssertions"]):
        print(f"ok bad.{name}: asserted")
    else:
        print(f"FAIL bad.{name}: no failed assertion contains {r['expect']!r}: {r['failedAssertions']}")
        bad += 1
sys.exit(1 if bad else 0)
PY
else
  echo "FAIL bad: evaluation failed"; failed=$((failed + 1))
fi

echo "${#good[@]} good configuration(s) + negative cases, $failed failure(s)"
[ "$failed" -eq 0 ]

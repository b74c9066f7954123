#!/usr/bin/env bash
# Renders the module's units (tests/nixos/render-units.nix) into tests/nixos/rendered/, or with
# --check compares a fresh rendering with the committed files. A developer tool like
# eval-module.sh (docs/NIXOS.md "Issue 14, point 5"): it needs a nixpkgs `lib` directory, which
# CI does not have; CI checks the committed files (nix_rendered_units) and the VM tier boots them.
#   tests/nixos/render-units.sh [--check] NIXPKGS_LIB_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
libdir=$(cd "${1:?usage: render-units.sh [--check] NIXPKGS_LIB_DIR}" && pwd)
command -v nix-instantiate >/dev/null || { echo "nix-instantiate is not installed"; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
nix-instantiate --eval --strict --json --arg nixpkgsLib "$libdir" "$here/render-units.nix" \
  2> >(grep -v build-users-group >&2) >"$out/rendered.json"
python3 - "$out/rendered.json" "$out/tree" <<'PY'
import json, pathlib, sys
data = json.load(open(sys.argv[1]))
tree = pathlib.Path(sys.argv[2])
for name, text in data["units"].items():
    path = tree / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
(tree / "links.txt").write_text("".join(f"{link}\n" for link in sorted(data["links"])))
PY
if [ "$check" = 1 ]; then
  if diff -ru "$here/rendered" "$out/tree"; then
    echo "ok: tests/nixos/rendered matches a fresh rendering"
  else
    echo "FAIL: tests/nixos/rendered differs from the module's rendering (run without --check)"
    exit 1
  fi
else
  rm -rf "$here/rendered"
  cp -r "$out/tree" "$here/rendered"
  echo "rendered into $here/rendered"
fi

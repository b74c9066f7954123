#!/usr/bin/env bash
# nix-instantiate --parse on every .nix file of the repository (found now, not listed), so a
# syntax error in the module, the flake or a VM test fails CI even without nixpkgs here.
set -uo pipefail
root=${1:?usage: nix-parse.sh REPO_ROOT}
if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "SKIP: nix-instantiate is not installed (apt-get install nix-bin)"
  exit 77
fi
mapfile -d '' files < <(find "$root" \( -name .git -o -name 'build*' -o -name result \) -prune -o -name '*.nix' -type f -print0 | sort -z)
[ "${#files[@]}" -gt 0 ] || { echo "no .nix files found under $root"; exit 1; }
failed=0
for f in "${files[@]}"; do
  if out=$(nix-instantiate --parse "$f" 2>&1 >/dev/null | grep -v "build-users-group"); [ -n "$out" ]; then
    echo "FAIL ${f#"$root"/}: $out"
    failed=$((failed + 1))
  else
    echo "ok ${f#"$root"/}"
  fi
done
echo "${#files[@]} file(s), $failed failure(s)"
[ "$failed" -eq 0 ]

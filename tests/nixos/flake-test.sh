#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || ko`: ok only echoes
# flake.nix's outputs evaluated against a stub nixpkgs (nix-instantiate, no nixpkgs here):
# `nixosModules.bootstate` and `.default` are the same module; `formatter` is pkgs.nixfmt, not
# the deprecated alias nixfmt-rfc-style (the stub throws on it, as a warning would be missed);
# the overlay calls nixos/package.nix without `src` (the package filters its own source).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v nix-instantiate >/dev/null || { echo "SKIP: nix-instantiate is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "ok - $*"; }
ko() { echo "not ok - $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/nixpkgs"
cat >"$tmp/nixpkgs/default.nix" <<'NIX'
{ system, overlays }:
let
  final = prev // builtins.foldl' (acc: o: acc // o final prev) { } overlays;
  prev = {
    nixfmt = "pkgs.nixfmt";
    nixfmt-rfc-style = throw "nixfmt-rfc-style is a deprecated alias of nixfmt";
    # What the overlay hands to callPackage: the file and the arguments it was given.
    callPackage = file: args: { inherit file args; };
  };
in
final
NIX
ev() {
  nix-instantiate --eval --strict --json -E "
    let
      nixpkgs = { outPath = $tmp/nixpkgs; lib.genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names); };
      self = flake // { outPath = $root; };
      flake = (import $root/flake.nix).outputs { inherit self nixpkgs; };
    in $1" 2> >(grep -v build-users-group >&2)
}
[ "$(ev 'builtins.attrNames flake.nixosModules')" = '["bootstate","default"]' ] &&
  ok "nixosModules has bootstate and default" || ko "nixosModules: $(ev 'builtins.attrNames flake.nixosModules')"
# Functions do not compare in Nix: apply both to the same arguments.
apply='m: let r = m { lib.mkDefault = x: x; pkgs.bootstate = "pkgs.bootstate"; }; in { imports = map toString r.imports; inherit (r.boot.state) package; }'
[ "$(ev "let a = $apply; in a flake.nixosModules.bootstate == a flake.nixosModules.default")" = true ] &&
  ok "nixosModules.default is nixosModules.bootstate (same imports and package)" || ko "default and bootstate differ"
[ "$(ev 'flake.formatter.x86_64-linux')" = '"pkgs.nixfmt"' ] && ok "formatter is pkgs.nixfmt" ||
  ko "formatter: $(ev 'flake.formatter.x86_64-linux' 2>&1)"
[ "$(ev 'flake.packages.x86_64-linux.bootstate.args')" = '{}' ] &&
  ok "the overlay passes no src (package.nix filters its source)" ||
  ko "overlay arguments: $(ev 'flake.packages.x86_64-linux.bootstate.args' 2>&1)"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }

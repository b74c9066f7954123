#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || ko`: ok only echoes
# The .note.dlopen ELF notes of the INSTALLED bootstate (cmake --install into a temporary
# prefix), as NixOS' make-initrd-ng reads them (tests/nixos/dlopen_notes.py, docs/NIXOS.md):
# the three features with their sonames, each soname resolving on this machine; the notes kept
# by `strip --strip-all` (nixpkgs' fixup and make-initrd-ng strip); a binary without them fails
# the same check (the check can fail); the module asks make-initrd-ng for the same features.
#   dlopen-notes-test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: dlopen-notes-test.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "ok - $*"; }
ko() { echo "not ok - $*"; failures=$((failures + 1)); }
notes() { python3 "$here/dlopen_notes.py" "$@"; }
expected=(fdisk=libfdisk.so.1 blkid=libblkid.so.1 libsystemd=libsystemd.so.0)

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "not ok - cmake --install failed"; exit 1; }
bin=$tmp/prefix/bin/bootstate
[ -x "$bin" ] && ok "installed $bin" || { ko "no bin/bootstate in the installed tree"; exit 1; }

notes --check "$bin" "${expected[@]}" && ok "the installed binary declares its three dlopen libraries" ||
  ko "notes of the installed binary"
# Every note, not only the three: nothing declared that does not resolve, nothing unexpected.
mapfile -t declared < <(notes "$bin" | python3 -c 'import json,sys; [print(e["feature"]+"="+s) for e in json.load(sys.stdin) for s in e["soname"]]' | sort)
mapfile -t wanted < <(printf '%s\n' "${expected[@]}" | sort)
[ "${declared[*]}" = "${wanted[*]}" ] && ok "exactly those three are declared" ||
  ko "declared: ${declared[*]}; expected: ${wanted[*]}"
# A note per dlopen call: each soname the code passes to dlopen is declared (a dlopen added
# without its note fails here).
mapfile -t opened < <(grep -rhoE 'dynamic_library::open\("[^"]+"' "$root"/{core,bootloader,initrd,stage2,firmware,cli} |
  sed -E 's/.*open\("([^"]+)"/\1/' | sort -u)
[ "${#opened[@]}" -gt 0 ] || ko "found no dynamic_library::open call in the sources"
for soname in "${opened[@]}"; do
  printf '%s\n' "${declared[@]}" | grep -q "=$soname\$" && ok "dlopen of $soname has a note" ||
    ko "bootstate dlopens $soname but no .note.dlopen declares it"
done

strip --strip-all -o "$tmp/stripped" "$bin"
notes --check "$tmp/stripped" "${expected[@]}" >/dev/null && ok "the notes survive strip --strip-all" ||
  ko "strip --strip-all dropped the notes"

# The check can fail: the same binary without its notes.
objcopy --remove-section .note.dlopen "$bin" "$tmp/no-notes"
if notes --check "$tmp/no-notes" "${expected[@]}" >"$tmp/out" 2>&1; then
  ko "a binary without .note.dlopen passes the check"
else
  grep -q "no .note.dlopen declares feature 'fdisk'" "$tmp/out" && ok "a binary without the notes fails the check, naming the feature" ||
    { ko "message for a binary without notes"; cat "$tmp/out"; }
fi

# The VM tier builds its initrd from the notes (tests/vm/vmimage.py): the three libraries from
# the installed binary, a refusal for the binary without notes.
vm_libs() { python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import vmimage; print(*vmimage.initrd_libraries(sys.argv[2]))' "$root/tests/vm" "$1"; }
libs=$(vm_libs "$bin") && [ "$(wc -w <<<"$libs")" = 3 ] && grep -q libfdisk.so.1 <<<"$libs" &&
  ok "the VM initrd gets $libs" || ko "the VM initrd libraries from the notes: $libs"
if vm_libs "$tmp/no-notes" >"$tmp/out" 2>&1; then
  ko "the VM initrd is built from a binary without notes"
else
  grep -q "declares no .note.dlopen libraries" "$tmp/out" && ok "no VM initrd from a binary without notes" ||
    { ko "message of the VM initrd builder"; cat "$tmp/out"; }
fi

# The module names the same features for make-initrd-ng (boot.initrd.systemd.storePaths).
features=$(sed -n '/^  dlopenFeatures = \[/,/^  \];/p' "$root/nixos/module.nix" | grep -oE '"[a-z0-9-]+"' | tr -d '"' | sort | tr '\n' ' ')
[ "$features" = "blkid fdisk libsystemd " ] && ok "nixos/module.nix asks make-initrd-ng for features: $features" ||
  ko "nixos/module.nix dlopenFeatures is '$features', the binary declares blkid fdisk libsystemd"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }

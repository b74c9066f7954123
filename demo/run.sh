#!/usr/bin/env bash
# bootstate demo: a simulated NixOS machine with systemd-boot boots through three generations.
#
#   generation 1 → 2: a three-step migration of an app's configuration with a reboot in the middle
#   generation 2 → 3: a migration that fails; the machine falls back to generation 2 on the very
#                     next boot and the backup taken before the failed migration is restored
#
# Every boot is simulated by bootsim (firmware + systemd-boot 252 + kernel + systemd, see
# docs/SIMULATOR.md) around the real bootstate binary; `bootstate status` is printed after each.
#
# Usage: demo/run.sh            (BUILD_DIR=… to reuse a build; KEEP=1 to keep the machine tree)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build-demo}"
PLANS="$REPO/demo/plans"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- 1. build dependencies (Debian packages), installed only when missing -------------------
packages=(cmake ninja-build g++ pkg-config libsystemd-dev libfdisk-dev libblkid-dev
          rapidjson-dev libfmt-dev doctest-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing missing build dependencies: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- 2. build bootstate and bootsim ----------------------------------------------------------
say "building bootstate and bootsim in $BUILD_DIR"
build_start=$SECONDS
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBOOTSTATE_FIRMWARE=OFF >/dev/null
fi
ninja -C "$BUILD_DIR" bootstate bootsim | tail -n 1
echo "(build: $((SECONDS - build_start)) s)"
BOOTSTATE="$(find "$BUILD_DIR" -type f -name bootstate -perm -u+x | head -n 1)"
BOOTSIM="$(find "$BUILD_DIR" -type f -name bootsim -perm -u+x | head -n 1)"

# --- 3. the simulated machine ------------------------------------------------------------------
demo_start=$SECONDS
ROOT="$(mktemp -d /tmp/bootstate-demo-XXXXXX)"
LOG="$ROOT.boots.jsonl"
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$ROOT" "$LOG"' EXIT; fi
sim() { "$BOOTSIM" "$@" --root "$ROOT"; }
boot() { sim boot --bootstate "$BOOTSTATE" --status --json-log "$LOG" "$@"; }
show_app() {
  echo "  /var/lib/app now holds:"
  (cd "$ROOT/var/lib/app" && for f in *; do printf '    %-20s %s\n' "$f" "$(head -c 60 "$f")"; done)
  echo "  boot entries on the ESP:"
  (cd "$ROOT/boot/loader/entries" && ls -1 | sed 's/^/    /')
}
install_generation() {  # NUMBER NAME: generation N with demo/plans/genN.json
  sim add-generation --toplevel "/nix/store/$2-nixos-system-demo" --number "$1" \
      --plan "$PLANS/gen$1.json" --counter +3-0 | sed 's/^/  new boot entry: /'
}

say "a machine in $ROOT: ESP at /boot, systemd-boot with boot counting (3 tries)"
sim setup
mkdir -p "$ROOT/var/lib/app"
echo "format=1" >"$ROOT/var/lib/app/config"
install_generation 1 1a1a1a1a1a1a1a1a

say "boot 1: generation 1 (nothing to migrate); the boot is blessed, generation 1 is 'last good'"
boot
show_app

say "installing generation 2: migration app-format-2 (export → convert [reboot] → reindex)"
install_generation 2 2b2b2b2b2b2b2b2b
echo "  what booting it will do (bootstate preview):"
"$BOOTSTATE" --root "$ROOT" --esp /boot preview "/nix/store/2b2b2b2b2b2b2b2b-nixos-system-demo" \
  | sed 's/^/    /' || true

say "boot 2: generation 2 runs 'export' and 'convert', then asks for the reboot 'convert' needs"
boot
show_app

say "boot 3: still generation 2 (the progress re-armed its boot counter); 'reindex' completes it"
boot
show_app

say "installing generation 3: migration app-format-3, whose 'check-plugins' step will fail"
echo "  (its plan lists app-format-2 too: a plan names every migration its generation wants;"
echo "   an applied migration missing from the booted plan is undone)"
install_generation 3 3c3c3c3c3c3c3c3c

say "boot 4: generation 3 converts the config, then 'check-plugins' fails: the entry is marked bad"
boot || true
show_app

say "boot 5: systemd-boot skips the bad entry and boots generation 2; the backup is restored"
boot
show_app

say "boot 6: an ordinary boot of generation 2 (nothing to do)"
boot

say "done: 6 boots in $((SECONDS - demo_start)) s"
if [[ -n "${KEEP:-}" ]]; then echo "kept: the machine tree $ROOT, one JSON record per boot in $LOG"; fi

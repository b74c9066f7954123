#!/usr/bin/env bash
# Installs the Debian 12 packages bootstate needs to build and test, only those missing.
# Usage: scripts/install-deps.sh [build|test]   (default: test = build + everything tests use)
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config
  libsystemd-dev libfdisk-dev libblkid-dev rapidjson-dev libfmt-dev doctest-dev
  libfwupd-dev
  scdoc                             # renders the bootstate(8) manual page
)
test_packages=(
  fwupd fwupd-tests dbus            # the real fwupd daemon and its fake devices
  fdisk dosfstools e2fsprogs        # disk images for storage and ESP tests
  hyperfine valgrind                # bench/ (not run by the tests)
  systemd-boot                      # systemd-bless-boot for the boot-loader cross-checks
  postgresql-15 jq                  # the PostgreSQL upgrade helper's tests
  nix-bin                           # nix-instantiate --parse of every .nix file
  util-linux python3 strace clang-format
  python3-jsonschema                # tests/cli: status/preview --json against docs/schema
  zsh fish                          # tests/cli: the zsh and fish completions
  python3-prometheus-client         # tests/cli: `bootstate metrics` through its parser
  clang-14 libclang-rt-14-dev       # tests/fuzz: libFuzzer targets with ASan+UBSan
  # tests/vm: qemu + OVMF + systemd-boot, a dracut initrd (dracut-core does not replace the
  # host's initramfs-tools), a debootstrap stage 2, mtools for the ESP image
  qemu-system-x86 ovmf systemd-boot-efi dracut-core debootstrap mtools cpio kmod binutils
)

wanted=("${build_packages[@]}")
if [ "${1:-test}" = test ]; then wanted+=("${test_packages[@]}"); fi

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

echo "Installing: ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

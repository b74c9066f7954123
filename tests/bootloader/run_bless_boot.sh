#!/bin/sh
# Runs the real systemd-bless-boot against a bootstate --root tree:
#   unshare -m -p -f --mount-proc sh run_bless_boot.sh ROOT VERB
# systemd-bless-boot reads /sys/firmware/efi/efivars and refuses to work in a container, so it
# runs chrooted into an overlay of / (on a private tmpfs) where /.dockerenv and
# /run/.containerenv are whited out, /sys/firmware/efi/efivars is ROOT's efivars directory and
# /esp is ROOT/boot. Needs root (CAP_SYS_ADMIN) and the systemd-boot package. Exit status is
# systemd-bless-boot's; 77 when the sandbox cannot be built.
set -u
root=$1
verb=$2
bless=/usr/lib/systemd/systemd-bless-boot
[ -x "$bless" ] || { echo "no $bless (package systemd-boot)"; exit 77; }
sandbox=$root/.bless-sandbox
mkdir -p "$sandbox" || exit 77
mount -t tmpfs bootstate-bless "$sandbox" || { echo "cannot mount tmpfs"; exit 77; }
mkdir -p "$sandbox/upper" "$sandbox/work" "$sandbox/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$sandbox/upper,workdir=$sandbox/work" \
  "$sandbox/merged" || { echo "cannot mount overlay"; exit 77; }
mknod "$sandbox/upper/.dockerenv" c 0 0 2>/dev/null
mkdir -p "$sandbox/upper/run" && mknod "$sandbox/upper/run/.containerenv" c 0 0 2>/dev/null
merged=$sandbox/merged
mount -t proc proc "$merged/proc" || exit 77
mount -t tmpfs none "$merged/sys" || exit 77
mkdir -p "$merged/sys/firmware/efi/efivars" "$merged/esp"
mount --bind "$root/sys/firmware/efi/efivars" "$merged/sys/firmware/efi/efivars" || exit 77
mount --bind "$root/boot" "$merged/esp" || exit 77
chroot "$merged" "$bless" --path=/esp "$verb" 2>&1

#!/usr/bin/env bash
# Writes docs/USAGE.md: an administrator's walk-through whose every output is real, captured from
# the demo's simulated machine (demo/run.sh: bootsim around the real bootstate binary, with
# systemd-boot 252's boot counting). The commands are shown as an administrator types them; they
# run with `--root TREE --esp /boot`, and TREE is removed from the paths they print.
#
# Usage: demo/usage.sh > docs/USAGE.md      (BUILD_DIR=… a build with bootstate and bootsim)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build-demo}"
PLANS="$REPO/demo/plans"
ninja -C "$BUILD_DIR" bootstate bootsim >/dev/null
BOOTSTATE="$(find "$BUILD_DIR" -type f -name bootstate -perm -u+x | head -n 1)"
BOOTSIM="$(find "$BUILD_DIR" -type f -name bootsim -perm -u+x | head -n 1)"
ROOT="$(mktemp -d /tmp/bootstate-usage-XXXXXX)"
trap 'rm -rf "$ROOT" "$ROOT.boot"' EXIT

sim() { "$BOOTSIM" "$@" --root "$ROOT"; }
boot() { sim boot --bootstate "$BOOTSTATE" >/dev/null || true; }
install_generation() {  # NUMBER NAME PLAN
  sim add-generation --toplevel "/nix/store/$2-nixos-system-demo" --number "$1" --plan "$3" \
      --counter +3-0 >/dev/null
}
# `$ bootstate ARGS` and what it printed, in a console block.
admin() {
  printf '```console\n$ bootstate %s\n' "$*"
  "$BOOTSTATE" --root "$ROOT" --esp /boot "$@" 2>&1 | sed "s|$ROOT||g" || true
  printf '```\n\n'
}
text() { cat; echo; }

sim setup >/dev/null
mkdir -p "$ROOT/var/lib/app"
echo "format=1" >"$ROOT/var/lib/app/config"
install_generation 1 1a1a1a1a1a1a1a1a "$PLANS/gen1.json"
boot

text <<'MD'
# Using bootstate: an administrator's walk-through

This walk-through follows one machine through six generations: a migration that needs a
reboot, a migration that fails and falls back, one that fails softly and is retried, an attempt
the operator cancels, and a check whose problem the operator resolves. Every
output below is real: `demo/usage.sh` wrote this file by driving the demo's simulated machine
(`demo/run.sh`: a directory tree booted by bootsim, which plays the firmware, systemd-boot 252
with boot counting, and systemd, around the real `bootstate` binary). On a real machine the
commands are the same, without the `--root` and `--esp` the script adds; the script removes
the tree's directory from the paths shown. `bootstate(8)` has every command and option.

## 1. Before switching: what will the new generation do?

Generation 2 carries a migration of the app's configuration in three steps, one of them before
the root file system leaves the initrd, and one that needs a reboot after it. `preview` runs
the real phase logic in memory (nothing is executed) and says what each boot will do:
MD
install_generation 2 2b2b2b2b2b2b2b2b "$PLANS/gen2.json"
admin preview /nix/store/2b2b2b2b2b2b2b2b-nixos-system-demo

text <<'MD'
"Initrd phases have work" means a live `nixos-rebuild switch` cannot do it all: boot into the
generation (`nixos-rebuild boot`, then reboot). `preview` exits 1 when something blocks, so a
deployment tool can stop before switching; `--json` gives the same as data
(docs/schema/preview.schema.json). The first action, as JSON:
MD
printf '```console\n$ bootstate --json preview /nix/store/2b2b2b2b2b2b2b2b-nixos-system-demo\n'
"$BOOTSTATE" --root "$ROOT" --esp /boot --json preview /nix/store/2b2b2b2b2b2b2b2b-nixos-system-demo |
  sed "s|$ROOT||g" | sed -n '1,/^    },/p'
printf '  ...\n```\n\n'

text <<'MD'
## 2. Watching a migration

The machine boots generation 2. `export` runs in the initrd, `convert` after activation, and
then bootstate reboots, because `convert` asked for it. After that first boot, `status` shows the
attempt in progress, the booted entry on trial (systemd-boot's counter: progress re-arms it, so a
long migration does not use up its tries), and what the next boot will do:
MD
boot
admin status
text <<'MD'
`bootstate log` prints the output of the steps that ran in the current attempt (newest failure
first; here nothing failed):
MD
admin log

text <<'MD'
The second boot runs `reindex`; the attempt completes, generation 2 becomes the last good one and
its entry is blessed:
MD
boot
admin status

text <<'MD'
A long step can be followed while it runs, from another terminal (or over ssh while the machine
is still in `bootstate-post-activation.service`): `log --follow` prints its output as it comes and
stops when the step is no longer running. Here generation 3's first step renders thumbnails for
a few seconds:
MD
# Generation 3: generation 2's migration as it was, and a recommended one.
python3 - "$PLANS/gen2.json" "$ROOT/gen3.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan["migrations"].append({
    "id": "thumbnails", "description": "Render thumbnails for the new gallery and publish them",
    "policy": "recommended", "after": ["app-format-2"],
    "steps": [
        {"id": "render", "phase": "post-activation", "kind": "command", "timeout": 60,
         "idempotent": True, "preview": "render 5 batches of thumbnails",
         "command": ["/bin/sh", "-c",
                     "for i in 1 2 3 4 5; do echo \"rendered batch $i/5\"; "
                     "echo \"$((i * 20)) batch $i of 5\" > \"$BOOTSTATE_PROGRESS\"; sleep 0.6; done"]},
        {"id": "publish", "phase": "post-activation", "kind": "command", "timeout": 30,
         "idempotent": True, "preview": "copy them to /var/lib/app/public",
         "command": ["/bin/sh", "-c",
                     "echo publishing 5 batches; cd \"$BOOTSTATE_ROOT/var/lib/app/public\" || exit 3; "
                     "echo published"]}]})
json.dump(plan, open(sys.argv[2], "w"), indent=1)
PY
install_generation 3 3c3c3c3c3c3c3c3c "$ROOT/gen3.json"
# The demo shortens the 10 s heartbeat of a running step to 1 s (a test hook).
BOOTSTATE_TEST_HEARTBEAT_MS=1000 sim boot --bootstate "$BOOTSTATE" --verbose >"$ROOT.boot" 2>&1 &
booting=$!
for _ in $(seq 200); do
  "$BOOTSTATE" --root "$ROOT" --esp /boot --json status 2>/dev/null | grep -q '"state": "running"' && break
  sleep 0.05
done
admin log --follow thumbnails/render
wait "$booting" || true

text <<'MD'
Meanwhile bootstate reports the step's progress: its start, a heartbeat every 10 seconds with
the elapsed time and the percentage the step writes to `$BOOTSTATE_PROGRESS` (here
`echo "40 batch 2 of 5" > "$BOOTSTATE_PROGRESS"`), and its end. These lines are the unit's status
(sd_notify `STATUS=`: the `Status:` line of `systemctl status bootstate-post-activation.service`),
go to the boot splash's message line when Plymouth runs, and to stderr when bootstate runs on a
terminal or, as here, with `--root`. What the post-activation phase printed in this boot (the
demo shortens the heartbeat to one second):
MD
printf '```console\n'
sed -n '/\[post-activation\]/,$p' "$ROOT.boot" | grep 'step "render"' | sed 's/^ *//'
printf '```\n\n'
rm -f "$ROOT.boot"

text <<'MD'
## 3. Reading a failed step's log, and retrying

`thumbnails` is *recommended*: its failure is recorded, but the boot goes on and the attempt
completes (a *required* migration's failure falls back instead; see section 4). `status` shows
the failure and its exit status:
MD
admin status
text <<'MD'
`bootstate log` without arguments shows the newest failure first, with the step's exit status
and the file its output is kept in (bounded; the journal has the same lines under
`SYSLOG_IDENTIFIER=bootstate-thumbnails-publish`):
MD
admin log
text <<'MD'
The directory is missing. After creating it, `retry` makes the migration run again; it runs at
its phase, here at the next boot (or at once with `systemctl restart
bootstate-post-activation.service`):
MD
mkdir -p "$ROOT/var/lib/app/public"
printf '```console\n$ mkdir /var/lib/app/public\n```\n\n'
admin retry thumbnails
boot
text <<'MD'
After the next boot the step has run again; a run in the same attempt appends to the same log:
MD
admin log thumbnails/publish
admin status
text <<'MD'
`history` lists every attempt, and `--json history` the same as data:
MD
admin history

text <<'MD'
## 4. A required migration fails: the fallback

Generation 4's plan keeps both migrations and adds `app-format-3`, whose `check-plugins` step
fails on this machine. It is *required*: the phase fails, bootstate marks the booted entry bad
(`+0-1`) and reboots, and systemd-boot then boots the last good generation:
MD
python3 - "$ROOT/gen3.json" "$PLANS/gen3.json" "$ROOT/gen4.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
demo = json.load(open(sys.argv[2]))
ours["migrations"].append([m for m in demo["migrations"] if m["id"] == "app-format-3"][0])
json.dump(ours, open(sys.argv[3], "w"), indent=1)
PY
install_generation 4 4d4d4d4d4d4d4d4d "$ROOT/gen4.json"
boot
admin status
text <<'MD'
The next boot is the fallback: generation 3 again, and `app-format-3` (which generation 3 does
not have) is undone from the backup taken before its first step:
MD
boot
admin status
text <<'MD'
`log` now shows the current attempt (the fallback, which ran no step) and points to the failed
one:
MD
admin log
admin log --attempt 4
text <<'MD'
To try generation 4 again after fixing the cause, boot it again (`nixos-rebuild boot`, or
`bootctl set-oneshot` with its entry); `preview` says what that boot will do:
MD
mkdir -p "$ROOT/var/lib/app/plugins"
printf '```console\n$ mkdir /var/lib/app/plugins\n```\n\n'
admin preview /nix/store/4d4d4d4d4d4d4d4d-nixos-system-demo

text <<'MD'
## 5. Cancelling an attempt

Generation 5 adds a search index: `search-index` builds it after activation (the app's data is
backed up first), and `search-initrd` then needs the initrd of the next boot. After the first
boot the attempt waits for that reboot:
MD
python3 - "$ROOT/gen3.json" "$ROOT/gen5.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan["migrations"] += [
    {"id": "search-index", "description": "Build the search index of the app's data",
     "policy": "required", "backup": ["/var/lib/app"],
     "steps": [{"id": "build", "phase": "post-activation", "kind": "command", "timeout": 30,
                "preview": "write /var/lib/app/search.idx",
                "command": ["/bin/sh", "-c", "echo index-v1 > \"$BOOTSTATE_ROOT/var/lib/app/search.idx\""]}]},
    {"id": "search-initrd", "description": "Let the initrd find the index", "policy": "required",
     "after": ["search-index"],
     "steps": [{"id": "register", "phase": "initrd-pre-mount", "kind": "command", "timeout": 30,
                "preview": "nothing, in this demo", "command": ["/bin/true"]}]}]
json.dump(plan, open(sys.argv[2], "w"), indent=1)
PY
install_generation 5 5e5e5e5e5e5e5e5e "$ROOT/gen5.json"
boot
admin status
text <<'MD'
The operator decides against it. `cancel` abandons the attempt: nothing more of it runs. With
boot counting it marks the booted entry bad, so the next boot starts the last good generation,
which undoes what the attempt applied. `status` says so of each migration the attempt applied
or would still have run:
MD
admin cancel
admin status
text <<'MD'
The next boot is generation 3 again; `search-index` (which generation 3 does not have) is undone
from its backup, and `history` keeps the cancelled attempt with its reason:
MD
boot
admin status
admin history
text <<'MD'
In a live switch (`nixos-rebuild switch` left work for the next boot) `cancel` undoes at once,
and `status` and `cancel` say to switch back with `nixos-rebuild switch --rollback`. A cancelled
generation booted anyway from the menu runs nothing of the attempt and is never blessed.

## 6. A check predicts a problem: choosing a resolution

A plan's `checks` run at `preview` and at boot (after their phase's undo work, before its migrations), against the
machine as it is. Generation 6 reads the app's search cache in version 2 only, and its check
finds version 1 on this machine. An item of severity `error` blocks the generation until a
resolution is chosen; `preview` exits 1 and names the commands:
MD
echo 1 >"$ROOT/var/lib/app/cache-version"
python3 - "$ROOT/gen3.json" "$ROOT/gen6.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
def write_version(version):
    return ["/bin/sh", "-c", "echo %s > \"$BOOTSTATE_ROOT/var/lib/app/cache-version\"" % version]
plan["checks"] = [{
    "id": "cache", "description": "the search cache is of the version this generation reads",
    "phase": "post-activation", "timeout": 10,
    "command": ["/bin/sh", "-c",
                "v=$(cat \"$BOOTSTATE_ROOT/var/lib/app/cache-version\" 2>/dev/null) || exit 0; "
                "[ \"$v\" = 2 ] && exit 0; "
                "printf '{\"id\": \"cache-v%s\", \"severity\": \"error\", \"message\": \"the search "
                "cache is of version %s; this generation reads version 2 only\", \"resolutions\": "
                "[\"rebuild\", \"drop\"], \"default\": \"rebuild\"}\\n' \"$v\" \"$v\""],
    "resolutions": [
        {"id": "rebuild", "description": "convert the cache to version 2 (minutes on a large site)",
         "backup": ["/var/lib/app"],
         "steps": [{"id": "convert", "phase": "post-activation", "kind": "command",
                    "timeout": 30, "command": write_version(2)}]},
        {"id": "drop", "description": "start with an empty cache of version 2",
         "backup": ["/var/lib/app"],
         "steps": [{"id": "empty", "phase": "post-activation", "kind": "command",
                    "timeout": 30, "command": write_version(2)}]}]}]
json.dump(plan, open(sys.argv[2], "w"), indent=1)
PY
install_generation 6 6f6f6f6f6f6f6f6f "$ROOT/gen6.json"
admin preview /nix/store/6f6f6f6f6f6f6f6f-nixos-system-demo
text <<'MD'
Choose at your own pace: before booting the generation (`--plan` names its plan, since its
items are in no state yet) or after it failed and fell back (`status` of the fallen-back
generation lists the item under "Items:" with the same commands). A choice can be withdrawn
with `--clear` until it has run:
MD
admin --plan /nix/store/6f6f6f6f6f6f6f6f-nixos-system-demo/bootstate/plan.json choose cache-v1 drop
admin --plan /nix/store/6f6f6f6f6f6f6f6f-nixos-system-demo/bootstate/plan.json choose cache-v1 --clear
admin --plan /nix/store/6f6f6f6f6f6f6f6f-nixos-system-demo/bootstate/plan.json choose cache-v1 rebuild
text <<'MD'
The next boot of generation 6 runs the check again (the item is still reported, now with a
choice), then the resolution as migration `cache.rebuild` like any other (backup, undo,
history); after it the check finds nothing and the item is resolved. Booting an older
generation undoes it like any migration that generation does not have:
MD
boot
admin status

text <<'MD'
## 7. Fleets

`bootstate metrics` writes the state for node-exporter's textfile collector
(docs/METRICS.md); colmena and deploy-rs users can read `bootstate --json status`
(docs/schema/status.schema.json):
MD
printf '```console\n$ bootstate metrics | grep -v "^#"\n'
"$BOOTSTATE" --root "$ROOT" --esp /boot metrics | grep -v '^#' | sed "s|$ROOT||g"
printf '```\n'

#!/usr/bin/env python3
"""VM tests (docs/TESTING.md "VM tests"): real OVMF, real systemd-boot 252 with boot counting,
the Debian cloud kernel, a dracut systemd initrd running bootstate's two initrd phases, and a
Debian stage 2 with boot-complete.target, systemd-bless-boot and the post-activation phase.

  vmtest.py --bootstate BIN --bootsim BIN --cache DIR --work DIR build
  vmtest.py --bootstate BIN --bootsim BIN --cache DIR --work DIR run NAME

`build` makes (or finds in the cache) the kernel, initrd, root file system and disk; `run` boots
scenario NAME (scenarios.py) until its attempt ends, asserts, and cross-checks the chosen
entries and counter names against bootsim. Console logs stay in WORK/NAME/boot-N.log."""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import scenarios  # noqa: E402
import vmimage  # noqa: E402
import vmrun  # noqa: E402

KERNEL_OPTIONS = ("root=PARTUUID={root} rw console=ttyS0,115200 panic=-1 loglevel=4 "
                  "rd.systemd.show_status=auto systemd.show_status=auto "
                  "systemd.journald.forward_to_console=1")


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def build_all(args):
    """Every artefact the scenarios share, built or taken from the cache."""
    cache = vmimage.Cache(args.cache)
    timings = {}

    def timed(name, function, *a):
        start = time.monotonic()
        result = function(*a)
        timings[name] = round(time.monotonic() - start, 1)
        return result

    kernel_dir, kver = timed("kernel", vmimage.kernel, cache)
    base = timed("root base (debootstrap)", vmimage.root_base, cache)
    initrd = timed("initrd (dracut)", vmimage.initrd, cache, args.bootstate, kernel_dir, kver)
    root = timed("root image", vmimage.root_image, cache, base, args.bootstate,
                 scenarios.all_generations(), scenarios.all_seed_files())
    disk = timed("disk", vmimage.base_disk, cache, root)
    print(f"artefacts: {json.dumps(timings)}")
    return {"kernel": kernel_dir / "boot" / f"vmlinuz-{kver}", "initrd": initrd, "disk": disk}


def entry_text(generation, artefacts_names):
    # The same fields as bootsim's entries (tests/bootsim/tree.cpp) so both sort alike.
    options = KERNEL_OPTIONS.format(root=vmimage.ROOT_PARTUUID)
    return (f"title NixOS\n"
            f"version Generation {generation.number} NixOS 24.11 (Linux 6.1.0), "
            f"built on 2024-11-{1 + generation.number % 28:02}\n"
            f"linux {artefacts_names['kernel']}\n"
            f"initrd {artefacts_names['initrd']}\n"
            f"initrd {artefacts_names['plan']}\n"
            f"options init={generation.toplevel}/init {options}\n"
            f"machine-id 0123456789abcdef0123456789abcdef\n"
            f"sort-key nixos\n")


def entry_stem(generation):
    """The generation's entry file name without counter and suffix: lanzaboote's UKI name, or
    nixpkgs' nixos-<hash> of a Type #1 entry."""
    if generation.uki:
        return vmimage.uki_stem(generation.number, generation.toplevel)
    return vmimage.entry_id(generation.toplevel)


def entry_suffix(generation):
    return ".efi" if generation.uki else ".conf"


def uki_osrel(generation):
    """.osrel as lanzaboote writes it (rust/tool/shared/src/os_release.rs): ID is the sort key
    (boot.lanzaboote.sortKey, default "lanza", so the UKI sorts before the "nixos" Type #1
    entries), a unique PRETTY_NAME, VERSION_ID describing the generation."""
    described = f"Generation {generation.number}, built on 2024-11-{1 + generation.number % 28:02}"
    return f'ID=lanza\nPRETTY_NAME="NixOS 24.11 ({described})"\nVERSION_ID="{described}"\n'


def prepare_disk(scenario, artefacts, workdir, loader_conf):
    disk = workdir / "disk.img"
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(artefacts["disk"]),
                    str(disk)], check=True)
    files = {"/EFI/nixos/linux.efi": artefacts["kernel"],
             "/EFI/nixos/initrd.efi": artefacts["initrd"]}
    entries = {}
    for generation in scenario.generations:
        entry = vmimage.entry_id(generation.toplevel)
        plan_cpio = vmimage.plan_initrd(generation.initrd_plan_for_vm(),
                                        workdir / f"{entry}-plan.cpio")
        plan_path = f"/EFI/nixos/{entry}-plan.efi"
        files[plan_path] = plan_cpio
        names = {"kernel": "/EFI/nixos/linux.efi", "initrd": "/EFI/nixos/initrd.efi",
                 "plan": plan_path}
        if generation.entry and generation.uki:
            # The plan's cpio rides in the UKI's .initrd behind the shared initrd, as the
            # generation's own initrd would carry it on NixOS; the command line is the one a
            # Type #1 entry of this generation would have (lanzaboote: init= first, then
            # boot.kernelParams).
            name = f"{entry_stem(generation)}{generation.counter}.efi"
            cmdline = (f"init={generation.toplevel}/init "
                       + KERNEL_OPTIONS.format(root=vmimage.ROOT_PARTUUID))
            files[f"/EFI/Linux/{name}"] = vmimage.uki(
                artefacts["kernel"], [artefacts["initrd"], plan_cpio], cmdline,
                uki_osrel(generation), workdir / name)
        elif generation.entry:
            entries[f"{entry}{generation.counter}.conf"] = entry_text(generation, names)
    if scenario.switch_to is not None:
        switch_to = workdir / "switch-to"
        switch_to.write_text(scenario.switch_to.toplevel + "\n")
        files["/vmtest/switch-to"] = switch_to
    vmimage.write_esp(disk, files, entries, loader_conf)
    return disk


def finished(boot):
    status = boot.status()
    return bool(status) and status.get("attempt", {}).get("state") in (
        "complete", "failed", "abandoned")


def boot_until_finished(scenario, machine):
    """Boots until the attempt ends. A scenario with `cut_at` cuts the power in the first boot
    that shows that marker (a step after a reboot runs in a later boot)."""
    cut_pending = scenario.cut_at
    for number in range(1, scenario.boots + 1):
        boot = machine.boot(cut_at=cut_pending)
        print(boot.summary(), flush=True)
        expect(boot.ended not in ("timeout", "emergency"),
               f"boot {number} ended in {boot.ended}: see {boot.log}")
        if boot.ended == "cut":
            cut_pending = None
            continue
        if finished(boot):
            expect(cut_pending is None, f"the marker {cut_pending!r} never appeared")
            return boot
    raise Failure(f"the attempt did not end within {scenario.boots} boots")


def booted_generation(boot):
    cmdline = boot.text("cmdline") or ""
    for word in cmdline.split():
        if word.startswith("init="):
            return word[5:].rsplit("/", 1)[0]
    return None


def migration(status, id):
    return next((m for m in status["migrations"] if m["id"] == id), None)


def step_of(status, migration_id, step_id):
    found = migration(status, migration_id)
    return next((s for s in found["steps"] if s["id"] == step_id), None) if found else None


def assert_blessed_completion(scenario, machine, last):
    status = last.status()
    new = scenario.new
    entry = entry_stem(new)
    expect(booted_generation(last) == new.toplevel, "the last boot is not the new generation")
    expect(status["attempt"]["state"] == "complete", f"attempt: {status['attempt']}")
    expect(status["last_good"] == new.toplevel, f"last_good: {status['last_good']}")
    expect(f"{entry}{entry_suffix(new)}" in last.entries_after,
           f"the entry is not blessed: {last.entries_after}")
    bless = last.text("bless-boot") or ""
    expect("Result=success" in bless, f"systemd-bless-boot: {bless}")
    return status


def assert_applied_once(last, names):
    files = last.files()
    for name in names:
        lines = (files.get(name) or "").splitlines()
        expect(len(lines) == 1, f"step effect {name} applied {len(lines)} times: {lines}")


def assert_step_cgroup(last, name, unit):
    """The step ran in a cgroup of its own below its unit's (Delegate=yes in the rendered
    units, stage2/step_cgroup.hpp), in the initrd as in stage 2."""
    where = (last.files().get(f"{name}.cgroup") or "").strip()
    expect(f"/{unit}/bootstate-step-" in where, f"step {name} ran in cgroup {where!r}")


def assert_fallback(scenario, machine, last, failed_step, expected_state="failed",
                    step_in_status=True):
    """The boot after a failure: the previous generation, the new entry marked bad, the new
    generation's attempt closed in the history with its reason, its migration undone and the
    backup restored, and `status` still naming the failed step and its exit status."""
    status = last.status()
    expect(booted_generation(last) == scenario.old.toplevel,
           f"fallback did not boot the previous generation: {booted_generation(last)}")
    # "+0-DONE", or "+0" when bootstate had re-armed the entry to "+TRIES-0" after initrd work
    # (systemd-bless-boot's spelling of a bad entry with no tries done).
    stem = entry_stem(scenario.new)
    bad = [n for n in last.entries_before
           if n.startswith(stem + "+0-") or n == stem + "+0" + entry_suffix(scenario.new)]
    expect(bad, f"the new entry was not marked bad: {last.entries_before}")
    closed = [a for a in last.history() if a["generation"] == scenario.new.toplevel]
    expect(closed and closed[-1]["state"] == expected_state,
           f"the new generation's attempt is not {expected_state}: {closed}")
    if failed_step:
        expect(failed_step[1] in closed[-1]["reason"], f"reason: {closed[-1]['reason']}")
    if failed_step and step_in_status:
        step = step_of(status, *failed_step)
        expect(step and step["state"] == "failed" and step.get("exit_status") == 3,
               f"status does not say why step {failed_step} failed: {step}")
    undone = migration(status, "app-v2")
    expect(undone and undone["state"] == "undone", f"app-v2: {undone}")
    expect((last.files().get("app") or "") == "v1\n",
           f"backup not restored: {last.files().get('app')!r}")
    return status


def assert_live_switch(scenario, machine, last, ok):
    """A live switch from the booted generation 1 to 2 (vmtest-switch restarts the module's
    post-activation unit): one boot, its report from that boot (so no reboot), generation 1
    still booted; on success the attempt of 2 complete and its step applied once; on failure
    the unit failed, the attempt of 2 failed and its migration undone at once (backup back)."""
    status = last.status()
    expect(len(machine.boots) == 1 and last.reached_stage2,
           "the switch rebooted the machine (no report from the switching boot)")
    expect(booted_generation(last) == scenario.old.toplevel, "generation 1 is not booted")
    result = last.files().get("switch-result") or ""
    attempt = status["attempt"]
    expect(attempt["generation"] == scenario.new.toplevel, f"no attempt of 2: {attempt}")
    if ok:
        expect("restart-exit 0" in result and "Result=success" in result,
               f"the restarted unit: {result!r}")
        expect(attempt["state"] == "complete", f"attempt: {attempt}")
        assert_applied_once(last, ["s1"])
    else:
        expect("restart-exit 0" not in result and "ActiveState=failed" in result,
               f"the restarted unit did not fail: {result!r}")
        expect(attempt["state"] == "failed", f"attempt: {attempt}")
        undone = migration(status, "app-v2")
        expect(undone and undone["state"] == "undone", f"app-v2: {undone}")
        expect((last.files().get("app") or "") == "v1\n",
               f"backup not restored: {last.files().get('app')!r}")


def assert_booted_uki(scenario, boot):
    """`boot` booted the new generation's UKI: systemd-boot selected the file in EFI/Linux
    (its counter decremented, LoaderBootCountPath in \\EFI\\Linux) and the kernel ran with
    init= from the UKI's .cmdline."""
    new = scenario.new
    stem = entry_stem(new)
    expect(f"{stem}{new.counter}.efi" in boot.entries_before,
           f"boot {boot.number}: the UKI did not start with {new.counter}: {boot.entries_before}")
    with open(boot.log, errors="replace") as file:
        console = file.read()
    expect(re.search(r"attempt \d+ started for " + re.escape(new.toplevel), console),
           f"boot {boot.number}: bootstate did not start the UKI's generation: {boot.log}")
    if not boot.reached_stage2:
        # The boot ended before the report (a failure rebooted it): the console is the witness.
        return
    selected = boot.efi_string("entry-selected") or ""
    expect(selected.lower() == f"{stem}{new.counter}.efi".lower() or
           selected.lower() == f"{stem}.efi".lower(),
           f"boot {boot.number}: LoaderEntrySelected {selected!r}, not the UKI {stem}")
    count_path = boot.efi_string("boot-count-path") or ""
    expect(count_path.lower().startswith("\\efi\\linux\\" + stem.lower() + "+"),
           f"boot {boot.number}: LoaderBootCountPath {count_path!r}")
    expect(booted_generation(boot) == new.toplevel,
           f"boot {boot.number}: init= {booted_generation(boot)}, not the UKI's generation")


def assert_phase_records(last, name, phases):
    """The effect file `name` has one line per run of its step, each naming the phase it ran
    in (vm-step apply records $BOOTSTATE_PHASE)."""
    lines = (last.files().get(name) or "").splitlines()
    expect([line.rsplit(" in ", 1)[-1] for line in lines] == phases,
           f"step effect {name}: {lines}, expected one run in each of {phases}")


def assert_store_matches_report(machine, last):
    """The store the host reads out of the image says what the guest reported."""
    def brief(history):
        return [(a["number"], a["generation"], a["state"]) for a in history]
    expect(brief(last.store_history) == brief(last.history()),
           f"the store on the disk {brief(last.store_history)} differs from what the guest "
           f"reported {brief(last.history())}")


# A kernel message ("[   32.75] ...") goes to the serial port by polling while a process's
# write to /dev/console drains through the UART's buffer, so the two interleave at any
# character, not only at line ends (seen in CI: the step's own kmsg marker split bootstate's
# "started" line). Removing the kernel messages wherever they start puts the process's lines
# back together.
KERNEL_MESSAGE = re.compile(r"\[\s*\d+\.\d+\] [^\r\n]*\r?\n")


def without_kernel_lines(console):
    return KERNEL_MESSAGE.sub("", console)


def assert_console_progress(boot, label):
    """The serial console of `boot` shows a step's start, a heartbeat and its end (issue 16
    item 4): bootstate writes them to /dev/console when Plymouth does not run."""
    with open(boot.log, errors="replace") as file:
        console = without_kernel_lines(file.read())
    for line in (re.escape(f"bootstate: {label}: started"),
                 re.escape(f"bootstate: {label}: running for ") + r"1\d s",
                 re.escape(f"bootstate: {label}: done after ") + r"1\d s"):
        expect(re.search(line, console), f"the console of boot {boot.number} lacks /{line}/: {boot.log}")


def assert_scenario(scenario, machine, last):
    name = scenario.name
    assert_store_matches_report(machine, last)
    if name == "a":
        assert_blessed_completion(scenario, machine, last)
        assert_applied_once(last, ["s1", "s2", "s3"])
        expect(len(machine.boots) == 2, "a reboot in the middle means two boots")
        expect("step s2 applied" in machine.boots[0].markers, "s2 did not run in boot 1")
        assert_console_progress(machine.boots[1], 'migration "app-v2" step "s3"')
        assert_step_cgroup(last, "s1", "bootstate-pre-switch-root.service")
        assert_step_cgroup(last, "s3", "bootstate-post-activation.service")
    elif name == "b":
        assert_fallback(scenario, machine, last, ("app-v2", "verify"))
        expect(not machine.boots[0].reached_stage2 or
               "Result=success" not in (machine.boots[0].text("bless-boot") or ""),
               "the failing boot was blessed")
    elif name == "c":
        # disk-check applied nothing, so only the history keeps it; app-v2 is undone.
        assert_fallback(scenario, machine, last, ("disk-check", "probe"), step_in_status=False)
        expect("step probe failing" in machine.boots[-2].markers,
               "the initrd step did not fail in the boot before the fallback")
        expect(not machine.boots[-2].reached_stage2, "the failing boot left the initrd")
    elif name == "d":
        assert_blessed_completion(scenario, machine, last)
        data = [p for p in vmimage.partitions(machine.disk) if p["name"] == "vmdata"]
        expect(data and data[0]["size"] * vmimage.SECTOR == 64 * vmimage.MIB,
               f"the data partition was not grown to 64 MiB: {data}")
        status = last.status()
        expect(migration(status, "grow-data")["state"] == "applied", "grow-data not applied")
    elif name == "u-ok":
        assert_booted_uki(scenario, machine.boots[0])
        assert_blessed_completion(scenario, machine, last)
        assert_phase_records(last, "s1", ["pre-switch-root"])
        assert_phase_records(last, "s2", ["post-activation"])
        expect(len(machine.boots) == 1, f"{len(machine.boots)} boots, expected one")
    elif name == "u-fail":
        failing = machine.boots[0]
        assert_booted_uki(scenario, failing)
        expect("step app wrote v2" in failing.markers,
               f"the UKI's initrd step did not run: {failing.markers}")
        assert_fallback(scenario, machine, last, ("app-v2", "verify"))
        expect(not failing.reached_stage2 or
               "Result=success" not in (failing.text("bless-boot") or ""),
               "the failing boot was blessed")
    elif name.startswith("g-"):
        assert_live_switch(scenario, machine, last, ok=name == "g-ok")
    elif name.startswith("e-"):
        assert_blessed_completion(scenario, machine, last)
        assert_applied_once(last, ["s1", "s2", "s3"])
        cut = next(b for b in machine.boots if b.ended == "cut")
        states = [a["state"] for a in cut.store_history]
        expect(states == ["in-progress"],
               f"after the power cut the store should hold the open attempt: {states}")
    elif name == "f":
        assert_fallback(scenario, machine, last, None, expected_state="abandoned")
        panics = [b for b in machine.boots if "panicking" in b.markers]
        expect(len(panics) >= 2, f"expected the new generation to panic repeatedly: {panics}")
    else:
        raise Failure(f"no assertions for scenario {name}")


def cross_check(scenario, machine, args, workdir):
    """Replays the scenario in bootsim for as many boots as the VM needed and compares, boot by
    boot, the entry file names after the boot, and the chosen entry and generation where the VM
    reported them (boots that ended in the initrd or a panic do not report)."""
    tree = workdir / "bootsim"
    shutil.rmtree(tree, ignore_errors=True)
    bootsim = [str(args.bootsim)]
    subprocess.run(bootsim + ["setup", "--root", str(tree)], check=True,
                   stdout=subprocess.DEVNULL)
    (tree / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(vmimage.GUEST / "vm-step", tree / "usr/local/bin/vm-step")
    for relative, content in scenario.seed.items():
        path = tree / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for generation in scenario.generations:
        plan = workdir / f"sim-plan-{generation.number}.json"
        plan.write_text(json.dumps(generation.plan, indent=2))
        subprocess.run(bootsim + ["add-generation", "--root", str(tree), "--toplevel",
                                  generation.toplevel, "--number", str(generation.number),
                                  "--plan", str(plan), "--counter",
                                  generation.counter or "none"],
                       check=True, stdout=subprocess.DEVNULL)
    log = workdir / "bootsim.jsonl"
    argv = bootsim + ["boot", "--root", str(tree), "--bootstate", str(args.bootstate),
                      "--boots", str(len(machine.boots)), "--json-log", str(log)]
    argv += [f"--panic-after-initrd={g.toplevel}" for g in scenario.generations if g.panics]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    simulated = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    expect(len(simulated) == len(machine.boots),
           f"bootsim ran {len(simulated)} boots, the VM {len(machine.boots)}")
    differences = []
    for real, sim in zip(machine.boots, simulated):
        if sorted(sim["entries_after"]) != real.entries_after:
            differences.append(f"boot {real.number}: entries VM {real.entries_after} "
                               f"bootsim {sorted(sim['entries_after'])}")
        selected = real.efi_string("entry-selected")
        if selected is not None and selected != sim["entry_selected"]:
            differences.append(f"boot {real.number}: LoaderEntrySelected VM {selected!r} "
                               f"bootsim {sim['entry_selected']!r}")
        generation = booted_generation(real)
        if generation is not None and generation != sim["generation"]:
            differences.append(f"boot {real.number}: generation VM {generation} "
                               f"bootsim {sim['generation']}")
    expect(not differences, "bootsim disagrees with systemd-boot:\n  " +
           "\n  ".join(differences))
    print(f"cross-check: bootsim agrees on {len(simulated)} boots")


def run_scenario(args):
    scenario = scenarios.SCENARIOS[args.name]
    artefacts = build_all(args)
    workdir = pathlib.Path(args.work) / scenario.name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(args.bootsim), "setup", "--root", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        loader_conf = (pathlib.Path(tmp) / "boot/loader/loader.conf").read_text()
    disk = prepare_disk(scenario, artefacts, workdir, loader_conf)
    machine = vmrun.Machine(workdir, disk, args.bootstate)
    print(f"scenario {scenario.name}: {scenario.title} (accelerator {machine.accel})",
          flush=True)
    started = time.monotonic()
    try:
        last = boot_until_finished(scenario, machine)
        assert_scenario(scenario, machine, last)
        if scenario.cross_check:
            cross_check(scenario, machine, args, workdir)
    except Failure as failure:
        print(f"FAIL {scenario.name}: {failure}\nconsole logs: {workdir}/boot-*.log")
        for boot in machine.boots:
            print(boot.summary())
            if boot.reached_stage2:
                print(boot.text("status"))
        return 1
    print(f"PASS {scenario.name}: {len(machine.boots)} boots in "
          f"{time.monotonic() - started:.0f}s")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstate", type=pathlib.Path, required=True)
    parser.add_argument("--bootsim", type=pathlib.Path, required=True)
    parser.add_argument("--cache", type=pathlib.Path, required=True)
    parser.add_argument("--work", type=pathlib.Path, required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build")
    run = sub.add_parser("run")
    run.add_argument("name", choices=sorted(scenarios.SCENARIOS))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the VM tests need root (debootstrap, dracut)", file=sys.stderr)
        return 1
    if args.command == "build":
        build_all(args)
        return 0
    return run_scenario(args)


if __name__ == "__main__":
    sys.exit(main())

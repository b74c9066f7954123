#!/usr/bin/env python3
"""The units nixos/module.nix renders (tests/nixos/rendered/, produced by render-units.sh from
the module with nixpkgs' lib) and the units installed from units/*.in (make install, the VM tier's
fallback) must agree on what matters for a boot: the argv, exit 4 as success, no FailureAction=,
oneshot + RemainAfterExit, the ordering against the initrd/boot-complete targets.
CI has no nixpkgs lib; this reads the committed rendering. Usage: rendered_units_check.py REPO"""
import pathlib
import shlex
import sys

repo = pathlib.Path(sys.argv[1])
rendered = repo / "tests/nixos/rendered"
failures = []


def parse(path):
    """systemd unit file: section -> key -> list of values (a repeated key accumulates)."""
    units, section = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = units.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return units


def words(unit, section, key):
    return [w for v in unit.get(section, {}).get(key, []) for w in v.split()]


def expect(cond, what):
    if not cond:
        failures.append(what)


def boolean(value):
    return value in ("true", "yes", "1", "on")


links = (rendered / "links.txt").read_text().split()
phases = {"initrd-pre-mount": "initrd", "pre-switch-root": "initrd", "post-activation": "system"}
mount = parse(rendered / "initrd/bootstate.mount")
esp_initrd = mount["Mount"]["Where"][0]
expect(boolean(mount["Unit"]["DefaultDependencies"][0]) is False,
       "bootstate.mount: DefaultDependencies must be false in the initrd")

for phase, where in phases.items():
    name = f"bootstate-{phase}.service"
    ours = parse(rendered / where / name)
    template = parse(repo / "units" / f"{name}.in")
    for label, unit in (("rendered", ours), ("units/*.in", template)):
        tag = f"{label} {name}"
        argv = shlex.split(unit["Service"]["ExecStart"][0])
        expect(argv[-3:] == ["run", "--phase", phase], f"{tag}: ExecStart does not end in run --phase {phase}: {argv}")
        expect(argv[0].endswith("/bin/bootstate") or argv[0] == "@BOOTSTATE_BIN@",
               f"{tag}: ExecStart does not run bootstate: {argv[0]}")
        expect(all("FailureAction" not in keys for keys in unit.values()),
               f"{tag}: has FailureAction= (DESIGN 'A live switch': bootstate reboots by itself)")
        expect(unit["Service"]["Type"] == ["oneshot"], f"{tag}: Type is not oneshot")
        expect(boolean(unit["Service"]["RemainAfterExit"][0]), f"{tag}: RemainAfterExit is off")
        expect(boolean(unit["Service"].get("Delegate", ["no"])[0]),
               f"{tag}: Delegate= is off (a cgroup per step needs it: stage2/step_cgroup.hpp)")
        status = words(unit, "Service", "SuccessExitStatus")
        if phase == "post-activation":
            expect(status == ["4"], f"{tag}: SuccessExitStatus is {status}, not 4")
            expect("boot-complete.target" in words(unit, "Unit", "Before"),
                   f"{tag}: not Before=boot-complete.target")
        else:
            expect(status == [], f"{tag}: an initrd phase must not treat an exit status as success")
            expect(not boolean(unit["Unit"]["DefaultDependencies"][0]),
                   f"{tag}: DefaultDependencies must be off in the initrd")
            expect("shutdown.target" in words(unit, "Unit", "Before")
                   and "shutdown.target" in words(unit, "Unit", "Conflicts"),
                   f"{tag}: not ordered against shutdown.target")
        if phase == "initrd-pre-mount":
            for target in ("sysroot.mount", "initrd-root-fs.target"):
                expect(target in words(unit, "Unit", "Before"), f"{tag}: not Before={target}")
        if phase == "pre-switch-root":
            expect("initrd-fs.target" in words(unit, "Unit", "After"), f"{tag}: not After=initrd-fs.target")
            for target in ("initrd-nixos-activation.service", "initrd-switch-root.target"):
                expect(target in words(unit, "Unit", "Before"), f"{tag}: not Before={target}")
    argv = shlex.split(ours["Service"]["ExecStart"][0])
    # What only the module's rendering carries: the plan each phase reads and the ESP mount.
    plan = argv[argv.index("--plan") + 1]
    esp = argv[argv.index("--esp") + 1]
    if where == "initrd":
        expect(plan == "/etc/bootstate/plan.json", f"rendered {name}: --plan {plan}")
        expect(esp == esp_initrd, f"rendered {name}: --esp {esp} is not the mount's {esp_initrd}")
        expect("bootstate.mount" in words(ours, "Unit", "Requires")
               and "bootstate.mount" in words(ours, "Unit", "After"),
               f"rendered {name}: does not require and follow bootstate.mount")
        expect(f"initrd/initrd.target.wants/{name}" in links, f"rendered {name}: not wanted by initrd.target")
        expect(template["Install"]["WantedBy"] == ["initrd.target"], f"units/{name}.in: not WantedBy=initrd.target")
    else:
        expect(plan == "/run/current-system/bootstate/plan.json", f"rendered {name}: --plan {plan}")
        expect(f"system/boot-complete.target.requires/{name}" in links,
               f"rendered {name}: not required by boot-complete.target")
        expect(template["Install"]["RequiredBy"] == ["boot-complete.target"],
               f"units/{name}.in: not RequiredBy=boot-complete.target")

for failure in failures:
    print("FAIL", failure)
print(f"{len(phases)} phases compared, {len(failures)} failure(s)")
sys.exit(1 if failures else 0)

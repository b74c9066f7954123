"""The VM scenarios of issue #7 as data: generations with their plans, entry counters, seed
files on the root file system. vmtest.py boots them under qemu and asserts; the same data
drives bootsim for the cross-check.

Plans use @ROOT@ (empty in the VM, the tree under bootsim) and @TOPLEVEL@, as bootsim does."""

import hashlib
import json

VM_STEP = "@ROOT@/usr/local/bin/vm-step"


def step(id, phase, argv, **extra):
    body = {"id": id, "phase": phase, "kind": "command", "timeout": 120, "command": argv}
    body.update(extra)
    return body


def applies(id, phase, name, sleep=None, **extra):
    """A non-idempotent step whose `check` knows whether it already ran (DESIGN semantics 3)."""
    argv = [VM_STEP, "apply", name] + ([str(sleep)] if sleep else [])
    return step(id, phase, argv, check=[VM_STEP, "check", name], **extra)


def writes(id, phase, name, value, **extra):
    return step(id, phase, [VM_STEP, "write", name, value], idempotent=True, **extra)


def fails(id, phase):
    return step(id, phase, [VM_STEP, "fail", id])


def migration(id, steps, **extra):
    body = {"id": id, "description": f"VM test migration {id}", "policy": "required",
            "steps": steps}
    body.update(extra)
    return body


class Generation:
    def __init__(self, scenario, number, migrations=(), counter="+3", panics=False,
                 entry=True, uki=False):
        tag = f"{scenario}-{number}"
        store_hash = hashlib.sha256(tag.encode()).hexdigest()[:32]
        self.toplevel = f"/nix/store/{store_hash}-nixos-system-vm-{tag}"
        self.number = number
        self.counter = counter
        self.panics = panics
        # False: no boot entry (a generation reached by a live switch; systemd-boot would
        # otherwise boot it first, as the newest)
        self.entry = entry
        # True: the entry is a unified kernel image in EFI/Linux (Type #2, lanzaboote's layout:
        # nixos-generation-N-HASH+COUNTER.efi), init= in its .cmdline section; else a Type #1
        # entry in loader/entries as nixpkgs' systemd-boot builder writes it.
        self.uki = uki
        self.plan = {"schema": 1, "generation": "@TOPLEVEL@", "migrations": list(migrations)}

    def plan_text(self, root, generation=None):
        text = json.dumps(self.plan, indent=2)
        text = text.replace("@ROOT@", root)
        return text.replace("@TOPLEVEL@", generation or self.toplevel)

    def plan_for_vm(self):
        return self.plan_text("")

    def initrd_plan_for_vm(self):
        # The initrd cannot name its own toplevel (DESIGN "Additions"): the placeholder.
        return self.plan_text("", "/run/booted-system")

    def as_json(self):
        return {"toplevel": self.toplevel, "counter": self.counter, "panics": self.panics,
                "uki": self.uki, "plan": self.plan}


class Scenario:
    def __init__(self, name, title, generations, boots, seed=None, cut_at=None,
                 cross_check=True, switch_to=None):
        self.name = name
        self.title = title
        self.generations = generations
        self.boots = boots  # the boots the scenario needs (the harness stops there)
        self.seed = seed or {}
        self.cut_at = cut_at  # console marker of the first boot at which the power is cut
        self.cross_check = cross_check
        self.switch_to = switch_to  # a generation the first boot switches to (vmtest-switch)

    @property
    def old(self):
        return self.generations[0]

    @property
    def new(self):
        return self.generations[-1]


APP = "/var/lib/vmtest/app"
SEED = {APP: "v1\n"}


def three_steps(name, cut_step=None, slow_step=None):
    """Scenario (a)'s migration: one step in the initrd with the root mounted, then two in
    stage 2 with a reboot between them. With cut_step, that step sleeps after applying its
    effect so the harness can cut the power inside it; slow_step takes 12 s, longer than one
    progress heartbeat (10 s), so the console shows one."""
    def sleep(step_id):
        return 60 if step_id == cut_step else 12 if step_id == slow_step else None
    return migration("app-v2", [
        applies("s1", "pre-switch-root", "s1", sleep("s1")),
        applies("s2", "post-activation", "s2", sleep("s2"), reboot=True),
        applies("s3", "post-activation", "s3", sleep("s3")),
    ])


def build():
    scenarios = []

    a = "a"
    scenarios.append(Scenario(
        a, "multi-step migration with a reboot in the middle completes and is blessed",
        [Generation(a, 1, counter=""), Generation(a, 2, [three_steps(a, slow_step="s3")])],
        boots=2))

    b = "b"
    scenarios.append(Scenario(
        b, "failed required post-activation step falls back and the backup is restored",
        [Generation(b, 1, counter=""),
         Generation(b, 2, [migration("app-v2", [
             writes("convert", "post-activation", "app", "v2"),
             fails("verify", "post-activation"),
         ], backup=[APP])])],
        boots=2, seed=SEED))

    c = "c"
    scenarios.append(Scenario(
        c, "failure in initrd-pre-mount reboots from the initrd and falls back",
        [Generation(c, 1, counter=""),
         Generation(c, 2, [
             migration("app-v2", [writes("convert", "pre-switch-root", "app", "v2",
                                         reboot=True)], backup=[APP]),
             # A step that failed may have changed something: without an undo, the previous
             # generation could not undo the migration and would refuse to go on.
             migration("disk-check", [fails("probe", "initrd-pre-mount")], after=["app-v2"],
                       undo=[step("forget-probe", "initrd-pre-mount",
                                  [VM_STEP, "undo", "probe"])]),
         ])],
        boots=3, seed=SEED))

    d = "d"
    scenarios.append(Scenario(
        d, "storage migration grows a partition of the virtio disk before root is mounted",
        [Generation(d, 1, counter=""),
         Generation(d, 2, [migration("grow-data", [{
             "id": "grow", "phase": "initrd-pre-mount", "kind": "storage",
             "operations": [{"op": "grow-partition", "disk": "/dev/vda",
                             "partition": "PARTLABEL=vmdata", "size": "64M"}]}],
             keep=True)])],
        boots=1, cross_check=False))

    for cut in ("s1", "s2", "s3"):
        name = f"e-{cut}"
        scenarios.append(Scenario(
            name, f"power cut inside step {cut} of (a): completes, each step applied once",
            [Generation(name, 1, counter=""), Generation(name, 2, [three_steps(name, cut)])],
            boots=4, cut_at=f"step {cut} applied", cross_check=False))

    f = "f"
    scenarios.append(Scenario(
        f, "new generation's kernel panics after the initrd: tries run out, fallback, undo",
        [Generation(f, 1, counter=""),
         Generation(f, 2, [migration("app-v2", [
             writes("convert", "pre-switch-root", "app", "v2"),
             applies("finish", "post-activation", "finish"),
         ], backup=[APP])], counter="+2", panics=True)],
        boots=6, seed=SEED))

    # Live switches (issue 14 item 1): the booted generation 1 switches to 2 with the module's
    # post-activation unit restarted, as switch-to-configuration does; no reboot either way.
    g_ok = "g-ok"
    new = Generation(g_ok, 2, [migration("app-v2", [applies("s1", "post-activation", "s1")])],
                     entry=False)
    scenarios.append(Scenario(
        g_ok, "live switch: the new generation's post-activation work runs, no reboot",
        [Generation(g_ok, 1, counter=""), new], boots=1, cross_check=False, switch_to=new))

    g_fail = "g-fail"
    new = Generation(g_fail, 2, [migration("app-v2", [
        writes("convert", "post-activation", "app", "v2"),
        fails("verify", "post-activation"),
    ], backup=[APP])], entry=False)
    scenarios.append(Scenario(
        g_fail, "live switch that fails: undone at once, the unit fails, no reboot",
        [Generation(g_fail, 1, counter=""), new], boots=1, seed=SEED, cross_check=False,
        switch_to=new))

    # Unified kernel images (issue 14 item 6): generation 2 is a UKI in EFI/Linux with a boot
    # counter in its file name, generation 1 a Type #1 entry. systemd-boot boots the UKI,
    # bootstate maps LoaderEntrySelected to EFI/Linux and reads init= from its .cmdline in the
    # initrd and in stage 2. bootsim models no UKIs: no cross-check.
    u_ok = "u-ok"
    scenarios.append(Scenario(
        u_ok, "UKI: its migration runs in the initrd and in stage 2, the UKI is blessed",
        [Generation(u_ok, 1, counter=""),
         Generation(u_ok, 2, [migration("app-v2", [
             applies("s1", "pre-switch-root", "s1"),
             applies("s2", "post-activation", "s2"),
         ])], uki=True)],
        boots=1, cross_check=False))

    u_fail = "u-fail"
    scenarios.append(Scenario(
        u_fail, "UKI whose migration fails: marked bad, fallback to the Type #1 entry, undone",
        [Generation(u_fail, 1, counter=""),
         Generation(u_fail, 2, [migration("app-v2", [
             writes("convert", "pre-switch-root", "app", "v2"),
             fails("verify", "post-activation"),
         ], backup=[APP])], uki=True)],
        boots=2, seed=SEED, cross_check=False))

    return {scenario.name: scenario for scenario in scenarios}


SCENARIOS = build()


def all_generations():
    return [g for scenario in SCENARIOS.values() for g in scenario.generations]


def all_seed_files():
    seed = {}
    for scenario in SCENARIOS.values():
        seed.update(scenario.seed)
    return seed

"""Builds what the VM tests boot: a Debian cloud kernel, a dracut-built systemd initrd carrying
bootstate and its initrd units, a Debian stage-2 root (debootstrap minbase + systemd) carrying
bootstate, its post-activation unit and systemd-bless-boot, and a GPT disk image with an ESP
that real systemd-boot (Debian's systemd-boot-efi) boots under OVMF.

Everything slow is cached under the cache directory, keyed by a digest of its inputs, so a
second run only rebuilds what changed (the initrd when bootstate changes, the root file system
when bootstate or the generations change). docs/TESTING.md "VM tests".
"""

import base64
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
GUEST = HERE / "guest"
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "nixos"))
import dlopen_notes  # noqa: E402  (the .note.dlopen reader make-initrd-ng's reading is checked with)

SECTOR = 512
MIB = 1024 * 1024
# Partition layout of every disk (MiB). The data partition ends well before the disk does:
# scenario (d) grows it in the initrd.
ESP_START, ESP_SIZE = 1, 127
ROOT_START, ROOT_SIZE = 128, 768
DATA_START, DATA_SIZE = 896, 16
DISK_SIZE = 1024
ESP_PARTUUID = "6a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b"
ROOT_PARTUUID = "6a1b2c3d-0002-4e5f-8a9b-0c1d2e3f4a5b"
DATA_PARTUUID = "6a1b2c3d-0003-4e5f-8a9b-0c1d2e3f4a5b"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

DEBIAN_MIRROR = "http://deb.debian.org/debian"
ROOT_PACKAGES = ["systemd", "systemd-sysv", "udev", "kmod", "libfdisk1", "libblkid1",
                 "libsystemd0"]
INITRD_MODULES = "bash systemd systemd-initrd kernel-modules udev-rules base dracut-systemd fs-lib rootfs-block"
INITRD_DRIVERS = ("virtio_pci virtio_blk ext4 vfat nls_cp437 nls_ascii nls_utf8 efivarfs")
# Tools the guest's step scripts (guest/vm-step) call. The libraries bootstate loads on first
# use are not listed: initrd_libraries() takes them from the binary's .note.dlopen notes, as
# NixOS' make-initrd-ng does, so a dlopen without its note fails the VM tier.
INITRD_TOOLS = ["/usr/bin/sync", "/usr/bin/sleep", "/usr/bin/mkdir", "/usr/bin/rm", "/usr/bin/mv",
                "/usr/bin/tail", "/usr/bin/base64"]
UNNEEDED_UNITS = [
    # Units that cost boot time under emulation and that no test needs.
    "serial-getty@ttyS0.service", "getty@tty1.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
    "systemd-timesyncd.service", "dpkg-db-backup.timer", "man-db.timer",
    "systemd-networkd.service", "systemd-resolved.service", "systemd-pstore.service",
]


def run(argv, **kwargs):
    """Runs argv (never through a shell); raises with its output when it fails."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
                           f"{result.stdout[-4000:]}")
    return result.stdout


def digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pathlib.Path) and part.is_file() and part.stat().st_size < 256 * MIB:
            h.update(part.read_bytes())
        elif isinstance(part, pathlib.Path):
            # Cached artefacts carry their inputs' digest in their name.
            h.update(str(part).encode())
        else:
            h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def package_version(name):
    out = run(["apt-cache", "policy", name])
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"apt-cache knows no candidate for {name}")


class Cache:
    """A directory of built artefacts; each is built into a temporary name and renamed, so an
    interrupted build never leaves a half artefact that a later run would trust."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, name, key, build):
        final = self.root / f"{name}-{key}"
        if final.exists():
            return final
        partial = self.root / f".{name}-{key}.partial"
        if partial.exists():
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
        build(partial)
        partial.rename(final)
        # Older versions of the same artefact are of no further use.
        for old in self.root.glob(f"{name}-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        return final


def kernel(cache):
    """The Debian cloud kernel and its modules, unpacked (never installed on the host)."""
    meta = run(["apt-cache", "depends", "linux-image-cloud-amd64"])
    package = next(line.split(":", 1)[1].strip() for line in meta.splitlines()
                   if line.strip().startswith("Depends:") and "linux-image-" in line)
    version = package_version(package)

    def build(out):
        with tempfile.TemporaryDirectory() as tmp:
            run(["apt-get", "download", package], cwd=tmp)
            deb = next(pathlib.Path(tmp).glob("*.deb"))
            run(["dpkg-deb", "-x", str(deb), str(out)])
        kver = package.removeprefix("linux-image-")
        run(["depmod", "-b", str(out), kver])

    path = cache.get("kernel", digest(package, version), build)
    kver = package.removeprefix("linux-image-")
    return path, kver


def root_base(cache):
    """Debian bookworm minbase with systemd (debootstrap), plus systemd-boot's files
    (systemd-bless-boot and its generator) unpacked from Debian's package."""
    sdboot_version = package_version("systemd-boot")

    def build(out):
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(ROOT_PACKAGES),
             "bookworm", str(out), DEBIAN_MIRROR])
        with tempfile.TemporaryDirectory() as tmp:
            run(["apt-get", "download", "systemd-boot"], cwd=tmp)
            deb = next(pathlib.Path(tmp).glob("*.deb"))
            # Not `dpkg-deb -x`: its tar would replace the merged-/usr symlink /lib with a
            # directory holding only the package's files.
            contents = pathlib.Path(tmp) / "data.tar"
            with open(contents, "wb") as tar:
                subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=tar,
                               check=True)
            run(["tar", "-x", "--keep-directory-symlink", "-f", str(contents), "-C", str(out)])
        for cached in (out / "var/cache/apt/archives").glob("*.deb"):
            cached.unlink()

    return cache.get("rootbase", digest("bookworm", ROOT_PACKAGES, sdboot_version, "merged /usr kept"), build)


def stripped(binary, out):
    run(["strip", "-o", str(out), str(binary)])
    return out


RENDERED = REPO / "tests/nixos/rendered"
# The store paths in the units nixos/module.nix renders (tests/nixos/render-units.sh) and where
# the VM has what they name. Any other store path in a rendered unit is an error: the VM would
# boot a unit that names something it does not have.
STORE_PATHS = [
    (r"/nix/store/[0-9a-z]{32}-bootstate-[0-9][^/]*/bin/bootstate", "/usr/bin/bootstate"),
    (r"/nix/store/[0-9a-z]{32}-bootstate-gcroots/bin/bootstate-gcroots",
     "/usr/local/bin/bootstate-gcroots"),
    # The generation's plan template; NixOS links it as $toplevel/bootstate/plan-template.json.
    (r"/nix/store/[0-9a-z]{32}-bootstate-plan-template\.json",
     "/run/current-system/bootstate/plan-template.json"),
]


def rendered_unit(relative):
    """A unit file as the module renders it, its store paths mapped into the VM (STORE_PATHS).
    X-Restart-Triggers= keeps its store path: systemd ignores X- keys, NixOS' switch reads it."""
    import re
    lines = []
    for line in (RENDERED / relative).read_text().splitlines(keepends=True):
        if not line.startswith("X-Restart-Triggers="):
            for pattern, replacement in STORE_PATHS:
                line = re.sub(pattern, replacement, line)
            if "/nix/store/" in line:
                raise RuntimeError(f"{relative}: no VM path for the store path in {line.strip()}")
        lines.append(line)
    return "".join(lines)


def rendered_links(prefix):
    """The .wants/.requires links generateUnits makes for the rendered units (links.txt)."""
    return [line.split("/", 1)[1] for line in (RENDERED / "links.txt").read_text().split()
            if line.startswith(prefix + "/")]


def install_rendered(system_dir, prefix):
    """Installs the rendered units of `prefix` (initrd or system) and their links."""
    for path in sorted((RENDERED / prefix).iterdir()):
        (system_dir / path.name).write_text(rendered_unit(f"{prefix}/{path.name}"))
    for link in rendered_links(prefix):
        target_dir, unit = link.split("/")
        (system_dir / target_dir).mkdir(exist_ok=True)
        (system_dir / target_dir / unit).symlink_to(f"../{unit}")


def initrd_libraries(bootstate):
    """The libraries the binary's .note.dlopen notes name, resolved as the host's loader does
    (this host is the Debian release the VM boots). Raises when the binary declares none or a
    soname does not resolve: the initrd would then lack what storage steps load."""
    sonames = dlopen_notes.sonames(bootstate)
    if not sonames:
        raise RuntimeError(f"{bootstate} declares no .note.dlopen libraries; the initrd would "
                           "lack libfdisk, libblkid and libsystemd")
    paths = []
    for soname in sonames:
        path = dlopen_notes.resolve(soname)
        if path is None:
            raise RuntimeError(f"{bootstate} declares {soname} (.note.dlopen), which does not "
                               "resolve on this host (ldconfig -p)")
        paths.append(path)
    return paths


def initrd(cache, bootstate, kernel_dir, kver):
    """One dracut systemd initrd for every generation: bootstate, the initrd units as
    nixos/module.nix renders them (the two phases and bootstate.mount, tests/nixos/rendered),
    vm-step. Each generation's plan comes in a second, tiny initrd (below)."""
    units = sorted((RENDERED / "initrd").iterdir()) + [RENDERED / "links.txt"]
    binaries = initrd_libraries(bootstate) + INITRD_TOOLS
    key = digest(bootstate, *units, GUEST / "vm-step", INITRD_MODULES, INITRD_DRIVERS,
                 binaries, kver, package_version("dracut-core"), "padded to 4")

    def build(out):
        with tempfile.TemporaryDirectory() as tmp:
            tree = pathlib.Path(tmp) / "tree"
            (tree / "usr/bin").mkdir(parents=True)
            (tree / "usr/local/bin").mkdir(parents=True)
            (tree / "etc/systemd/system").mkdir(parents=True)
            stripped(bootstate, tree / "usr/bin/bootstate")
            shutil.copy2(GUEST / "vm-step", tree / "usr/local/bin/vm-step")
            install_rendered(tree / "etc/systemd/system", "initrd")
            run(["dracut", "--quiet", "--no-hostonly", "--force", "--kver", kver,
                 "--kmoddir", str(kernel_dir / "lib/modules" / kver),
                 "-m", INITRD_MODULES, "--add-drivers", INITRD_DRIVERS,
                 "--include", str(tree), "/", "--install", " ".join(binaries),
                 str(out)])
        # The kernel unpacks an uncompressed cpio that follows a compressed one only when it
        # starts at a multiple of 4 bytes (init/initramfs.c), and systemd-boot 252 appends
        # the generation's plan initrd without padding: pad here (zeros are skipped).
        with open(out, "ab") as image:
            image.write(b"\0" * (-image.tell() % 4))

    return cache.get("initrd", key, build)


def plan_initrd(plan_text, out):
    """A newc cpio with /etc/bootstate/plan.json: the generation's own initrd part, appended
    by systemd-boot to the shared one (a second `initrd` line of the entry)."""
    with tempfile.TemporaryDirectory() as tmp:
        target = pathlib.Path(tmp) / "etc/bootstate"
        target.mkdir(parents=True)
        (target / "plan.json").write_text(plan_text)
        files = "etc\netc/bootstate\netc/bootstate/plan.json\n"
        with open(out, "wb") as archive:
            subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--owner", "0:0"], cwd=tmp,
                           input=files.encode(), stdout=archive, check=True)
    return out


def entry_id(toplevel):
    """nixos-<hash>: the same FNV-1a stand-in for nixpkgs' content hash as bootsim uses
    (tests/bootsim/tree.cpp), so the two runs name their entries identically."""
    value = 0xcbf29ce484222325
    for byte in toplevel.encode():
        value ^= byte
        value = (value * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"nixos-{value & 0xFFFFFFFFFFFF:012x}"


# Where objcopy puts the UKI's sections: past the stub's own (Debian's linuxx64.efi.stub 252 ends
# below 0x1a000, image base 0), as systemd's documented objcopy recipe and lanzaboote's pe.rs
# (sections appended after the stub's last one) do; .linux and .initrd follow at 4 KiB-aligned
# addresses computed from their sizes, so a larger kernel or initrd never overlaps.
EFI_STUB = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
UKI_OSREL_VMA, UKI_CMDLINE_VMA, UKI_LINUX_VMA = 0x20000, 0x30000, 0x2000000


def uki_stem(number, toplevel):
    """The name lanzaboote gives a generation's UKI in EFI/Linux, without counter and suffix:
    nixos-generation-N-HASH, HASH 52 characters of unpadded lowercase base32 of a SHA-256
    (lanzaboote rust/tool/systemd/src/install.rs `stub_name`; its boot-counting test expects
    /boot/EFI/Linux/nixos-generation-1-[0-9a-z]{52}+2.efi). lanzaboote hashes the toplevel and
    the signing key; the VM has no key, so the toplevel alone stands in."""
    digest = hashlib.sha256(toplevel.encode()).digest()
    return f"nixos-generation-{number}-{base64.b32encode(digest).decode().rstrip('=').lower()}"


def uki(kernel, initrds, cmdline, osrel, out):
    """A unified kernel image as lanzaboote lays one out and systemd-stub boots it: Debian's
    systemd EFI stub with .osrel, .cmdline (init= of the generation), .linux and .initrd added
    by objcopy. lanzaboote's own stub stores paths and hashes of kernel and initrd instead of
    the files (.linux/.initrd name files in EFI/nixos); systemd-stub (ukify, the Boot Loader
    Specification's Type #2) embeds them, which is what systemd-stub 252 here can boot.
    `initrds` are concatenated (the shared initrd is padded to 4 bytes, the plan's cpio follows)."""
    out = pathlib.Path(out)
    work = out.parent / f".{out.name}.parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        (work / "osrel").write_text(osrel)
        # systemd-stub takes the section up to its first NUL; no trailing newline.
        (work / "cmdline").write_text(cmdline)
        with open(work / "initrd", "wb") as combined:
            for part in initrds:
                combined.write(pathlib.Path(part).read_bytes())
        align = 0x1000
        linux_size = pathlib.Path(kernel).stat().st_size
        initrd_vma = (UKI_LINUX_VMA + linux_size + align - 1) // align * align
        sections = [(".osrel", work / "osrel", UKI_OSREL_VMA),
                    (".cmdline", work / "cmdline", UKI_CMDLINE_VMA),
                    (".linux", kernel, UKI_LINUX_VMA),
                    (".initrd", work / "initrd", initrd_vma)]
        argv = ["objcopy"]
        for name, path, vma in sections:
            argv += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={vma:#x}"]
        run(argv + [EFI_STUB, str(out)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def root_image(cache, base, bootstate, generations, seed_files):
    """The stage-2 root file system as an ext4 image: the Debian base, bootstate and its
    post-activation unit, the report service, and every generation's toplevel
    (/nix/store/...: `init` and `bootstate/plan.json`)."""
    guest_files = [GUEST / name for name in
                   ("vm-step", "vmtest-report", "vmtest-report.service", "panic-init",
                    "vmtest-current-system", "vmtest-current-system.service", "vmtest-switch",
                    "vmtest-switch.service")]
    units = sorted((RENDERED / "system").iterdir()) + [RENDERED / "links.txt",
                                                       REPO / "nixos/gcroots.sh"]
    key = digest(base, bootstate, *units, *guest_files,
                 json.dumps([g.as_json() for g in generations], sort_keys=True),
                 json.dumps(seed_files, sort_keys=True), ROOT_SIZE, UNNEEDED_UNITS)

    def build(out):
        with tempfile.TemporaryDirectory(dir=cache.root) as tmp:
            tree = pathlib.Path(tmp) / "root"
            run(["cp", "-a", "--reflink=auto", str(base), str(tree)])
            stripped(bootstate, tree / "usr/bin/bootstate")
            local = tree / "usr/local/bin"
            for name in ("vm-step", "vmtest-report", "panic-init", "vmtest-current-system",
                         "vmtest-switch"):
                shutil.copy2(GUEST / name, local / name)
            shutil.copy2(REPO / "nixos/gcroots.sh", local / "bootstate-gcroots")
            # systemd.tmpfiles.rules of the module; RequiresMountsFor= of the unit names it.
            (tree / "var/lib/bootstate").mkdir(mode=0o700, parents=True, exist_ok=True)
            system = tree / "etc/systemd/system"
            install_rendered(system, "system")
            shutil.copy2(GUEST / "vmtest-report.service", system)
            shutil.copy2(GUEST / "vmtest-current-system.service", system)
            shutil.copy2(GUEST / "vmtest-switch.service", system)
            for target, unit_name in (("multi-user.target.wants", "vmtest-report.service"),
                                      ("multi-user.target.wants", "vmtest-switch.service"),
                                      ("bootstate-post-activation.service.wants",
                                       "vmtest-current-system.service")):
                (system / target).mkdir(exist_ok=True)
                (system / target / unit_name).symlink_to(f"../{unit_name}")
            for masked in UNNEEDED_UNITS:
                link = system / masked
                if link.exists() or link.is_symlink():
                    link.unlink()
                link.symlink_to("/dev/null")
            (tree / "etc/fstab").write_text(
                f"PARTUUID={ROOT_PARTUUID} / ext4 rw,errors=remount-ro 0 1\n"
                f"PARTUUID={ESP_PARTUUID} /boot vfat umask=0077 0 2\n")
            (tree / "boot").mkdir(exist_ok=True)
            (tree / "etc/hostname").write_text("bootstate-vm\n")
            (tree / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
            for generation in generations:
                toplevel = tree / generation.toplevel.lstrip("/")
                (toplevel / "bootstate").mkdir(parents=True)
                if generation.panics:
                    shutil.copy2(GUEST / "panic-init", toplevel / "init")
                else:
                    (toplevel / "init").symlink_to("/lib/systemd/systemd")
                (toplevel / "bootstate/plan.json").write_text(generation.plan_for_vm())
                # The module's toplevel links its plan template there (systemBuilderCommands);
                # the post-activation unit's gcroots helper roots it.
                (toplevel / "bootstate/plan-template.json").write_text(generation.plan_for_vm())
            for relative, content in seed_files.items():
                path = tree / relative.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
            run(["mkfs.ext4", "-q", "-F", "-L", "nixos", "-d", str(tree),
                 str(out), f"{ROOT_SIZE}M"])

    return cache.get("root", key, build)


def base_disk(cache, root_img):
    """GPT disk with the ESP (empty; each scenario writes its own), root and data partitions."""
    def build(out):
        run(["truncate", "-s", f"{DISK_SIZE}M", str(out)])
        table = (
            "label: gpt\n"
            "label-id: 6A1B2C3D-0000-4E5F-8A9B-0C1D2E3F4A5B\n"
            f"start={ESP_START * MIB // SECTOR}, size={ESP_SIZE * MIB // SECTOR}, "
            f"type={ESP_TYPE}, uuid={ESP_PARTUUID}, name=ESP\n"
            f"start={ROOT_START * MIB // SECTOR}, size={ROOT_SIZE * MIB // SECTOR}, "
            f"type={LINUX_TYPE}, uuid={ROOT_PARTUUID}, name=nixos\n"
            f"start={DATA_START * MIB // SECTOR}, size={DATA_SIZE * MIB // SECTOR}, "
            f"type={LINUX_TYPE}, uuid={DATA_PARTUUID}, name=vmdata\n")
        subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(out)],
                       input=table, text=True, check=True, stdout=subprocess.DEVNULL)
        run(["dd", f"if={root_img}", f"of={out}", "bs=1M", f"seek={ROOT_START}",
             "conv=notrunc,sparse", "status=none"])

    return cache.get("disk", digest(root_img, ESP_SIZE, ROOT_SIZE, DATA_SIZE), build)


def write_esp(disk, files, entries, loader_conf):
    """Formats the ESP partition of `disk` and fills it: systemd-boot as the removable-media
    loader, loader.conf, the entries, kernels and initrds (`files`: ESP path → host path)."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    with tempfile.TemporaryDirectory() as tmp:
        esp = pathlib.Path(tmp) / "esp.img"
        run(["mkfs.vfat", "-F", "32", "-n", "ESP", "-C", str(esp), str(ESP_SIZE * 1024)])
        image = f"{esp}"
        # EFI/Linux (Type #2 entries) only where a scenario boots a UKI: the other scenarios'
        # ESPs stay as nixpkgs' systemd-boot builder leaves them.
        with_ukis = ("EFI/Linux",) if any(p.startswith("/EFI/Linux/") for p in files) else ()
        for directory in ("EFI", "EFI/BOOT", "EFI/systemd", "EFI/nixos", "loader",
                          "loader/entries", "vmtest") + with_ukis:
            run(["mmd", "-i", image, f"::/{directory}"], env=env)
        sdboot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
        run(["mcopy", "-i", image, sdboot, "::/EFI/BOOT/BOOTX64.EFI"], env=env)
        run(["mcopy", "-i", image, sdboot, "::/EFI/systemd/systemd-bootx64.efi"], env=env)
        conf = pathlib.Path(tmp) / "loader.conf"
        conf.write_text(loader_conf)
        run(["mcopy", "-i", image, str(conf), "::/loader/loader.conf"], env=env)
        for esp_path, host_path in files.items():
            run(["mcopy", "-i", image, str(host_path), "::" + esp_path], env=env)
        for name, text in entries.items():
            path = pathlib.Path(tmp) / name
            path.write_text(text)
            run(["mcopy", "-i", image, str(path), f"::/loader/entries/{name}"], env=env)
        run(["dd", f"if={esp}", f"of={disk}", "bs=1M", f"seek={ESP_START}", "conv=notrunc",
             "status=none"])


def esp_entries(disk):
    """Entry file names on the disk's ESP, sorted: Type #1 (loader/entries/*.conf) and, when the
    ESP has EFI/Linux, Type #2 (EFI/Linux/*.efi)."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    out = run(["mdir", "-b", "-i", f"{disk}@@{ESP_START}M", "::/loader/entries"], env=env)
    names = [line.rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()]
    entries = [name for name in names if name.lower().endswith(".conf")]
    if "Linux" in esp_listing(disk, "/EFI"):
        entries += [name for name in esp_listing(disk, "/EFI/Linux")
                    if name.lower().endswith(".efi")]
    return sorted(entries)


def esp_listing(disk, esp_dir):
    """Names in a directory of the disk's ESP."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    out = run(["mdir", "-b", "-i", f"{disk}@@{ESP_START}M", "::" + esp_dir], env=env)
    return [line.rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()]


def esp_copy_dir(disk, esp_dir, out):
    """Copies a directory of the disk's ESP (recursively) into `out`."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mcopy", "-s", "-n", "-i", f"{disk}@@{ESP_START}M", "::" + esp_dir, str(out)], env=env)
    return out


def partitions(disk):
    """sfdisk's JSON view of the disk's partition table."""
    return json.loads(run(["sfdisk", "--json", str(disk)]))["partitiontable"]["partitions"]

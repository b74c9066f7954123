"""One VM test machine: a disk image and an EFI variable store booted again and again by qemu
with OVMF. qemu runs with -no-reboot, so a guest reboot ends the qemu process and the harness
starts the next boot itself (a forced reboot, same disk, same variables); killing qemu when a
marker appears on the serial console is a power cut at that point."""

import base64
import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
import time

import vmimage

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
REPORT = "BOOTSTATE-VM-REPORT "
MARKER = "BOOTSTATE-VM: "


def accelerator():
    """KVM when it really works here (it needs the CPU's virtualisation extensions), else TCG;
    BOOTSTATE_VM_ACCEL overrides."""
    chosen = os.environ.get("BOOTSTATE_VM_ACCEL")
    if chosen:
        return chosen
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
        if os.access("/dev/kvm", os.R_OK | os.W_OK) and (" vmx" in flags or " svm" in flags):
            return "kvm"
    except OSError:
        pass
    return "tcg"


class Boot:
    """What one boot showed: console markers, the report of stage 2 (when it got there), the
    ESP's entries before and after, and how it ended."""

    def __init__(self, number):
        self.number = number
        self.markers = []
        self.report = {}
        self.ended = None  # "reboot" (qemu exited by itself), "cut", "timeout"
        self.seconds = 0.0
        # qemu's exit status: a boot that ends at once with no output says nothing else of why
        # (negative: the signal that ended it; -9 is our own kill for "cut" and "timeout").
        self.exit_status = None
        self.entries_before = []
        self.entries_after = []
        self.store_history = []  # the store read out of the image after the boot, by the host
        self.log = None

    def text(self, key):
        value = self.report.get(key)
        if value in (None, "-"):
            return None
        return base64.b64decode(value).decode("utf-8", "replace")

    def efi_string(self, key):
        value = self.report.get(key)
        if value in (None, "-"):
            return None
        return base64.b64decode(value).decode("utf-16-le").rstrip("\0")

    def status(self):
        text = self.text("status")
        return json.loads(text) if text else None

    def history(self):
        text = self.text("history")
        return json.loads(text) if text else []

    def files(self):
        return {key[5:]: self.text(key) for key in self.report if key.startswith("file:")}

    @property
    def reached_stage2(self):
        return "end" in self.report

    def summary(self):
        where = "stage 2" if self.reached_stage2 else "no report"
        return (f"boot {self.number}: {self.ended} after {self.seconds:.1f}s ({where}, "
                f"qemu exit {self.exit_status}); "
                f"entries {self.entries_before} -> {self.entries_after}; "
                f"markers {self.markers}")


class Machine:
    def __init__(self, workdir, disk, bootstate, boot_timeout=float(os.environ.get(
            "BOOTSTATE_VM_BOOT_TIMEOUT", "240"))):
        self.bootstate = bootstate
        self.workdir = pathlib.Path(workdir)
        self.disk = pathlib.Path(disk)
        self.vars = self.workdir / "efivars.fd"
        shutil.copyfile(OVMF_VARS, self.vars)
        self.boot_timeout = boot_timeout
        self.boots = []
        self.accel = accelerator()

    def argv(self):
        return ["qemu-system-x86_64", "-nodefaults", "-no-reboot", "-m", "768", "-smp", "1",
                "-machine", "q35", "-accel", self.accel, "-display", "none",
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={self.vars}",
                "-drive", f"if=virtio,format=raw,file={self.disk}",
                "-net", "none", "-serial", "stdio", "-monitor", "none"]

    def boot(self, cut_at=None):
        """Boots once. `cut_at`: a console marker text ("step s1 applied"); when it appears,
        qemu is killed (SIGKILL) — the power cut."""
        record = Boot(len(self.boots) + 1)
        record.entries_before = vmimage.esp_entries(self.disk)
        record.log = self.workdir / f"boot-{record.number}.log"
        started = time.monotonic()
        lines = queue.Queue()
        with open(record.log, "w") as log:
            process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

            def pump():
                for raw in process.stdout:
                    lines.put(raw.decode("utf-8", "replace"))
                lines.put(None)

            threading.Thread(target=pump, daemon=True).start()
            deadline = started + self.boot_timeout
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    line = ""
                if line is None:
                    record.ended = "reboot"
                    break
                if time.monotonic() > deadline:
                    process.kill()
                    record.ended = "timeout"
                    break
                if not line:
                    continue
                log.write(line)
                log.flush()
                self._parse(line, record)
                if "Entering emergency mode" in line:
                    # Nothing would ever end the boot: fail now, with the log.
                    process.kill()
                    record.ended = "emergency"
                    break
                if cut_at and any(cut_at == marker for marker in record.markers):
                    process.kill()
                    record.ended = "cut"
                    break
            record.exit_status = process.wait()
        record.seconds = time.monotonic() - started
        record.entries_after = vmimage.esp_entries(self.disk)
        record.store_history = self.read_store(record.number)
        self.boots.append(record)
        with open(self.workdir / "boots.txt", "a") as summary:
            summary.write(record.summary() + "\n")
        return record

    def read_store(self, number):
        """Copies $ESP/bootstate out of the image and decodes it with the host's bootstate:
        what is durable on the disk after the boot (or the power cut), whatever the guest said."""
        copy = self.workdir / f"esp-after-boot-{number}"
        copy.mkdir()
        if "bootstate" not in vmimage.esp_listing(self.disk, "/"):
            return []
        vmimage.esp_copy_dir(self.disk, "/bootstate", copy)
        out = subprocess.run([str(self.bootstate), "--esp", str(copy), "--json", "history"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"the store after boot {number} does not decode: {out.stdout}")
        return json.loads(out.stdout)

    @staticmethod
    def _parse(line, record):
        line = line.replace("\r", "").rstrip("\n")
        if MARKER in line:
            record.markers.append(line.split(MARKER, 1)[1].strip())
        if line.startswith(REPORT):
            parts = line[len(REPORT):].split(" ", 1)
            if len(parts) == 2:
                record.report[parts[0]] = parts[1].strip()

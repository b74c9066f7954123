"""Bad input gets a clear error naming the thing, exit 2, and changes nothing."""

import json
import os
import stat
import struct
import shutil
import subprocess
import unittest

from harness import BOOTSTATE, Machine, STEP_TOOL, command_step


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class StoreUnchangedCase(unittest.TestCase):
    """A machine that booted gen1 (one applied migration); assert_rejected checks exit 2, the
    message, and that the state slots are byte for byte what they were."""

    def setUp(self):
        self.machine = Machine()
        m = self.machine
        m.write_plan("gen1", [{"id": "app", "policy": "required", "steps": [
            command_step("a", [STEP_TOOL, "append", m.path("/var/lib/log"), "a"])]}])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        self.before = m.store_bytes()

    def tearDown(self):
        for directory in ("/boot", "/boot/bootstate"):
            if os.path.isdir(self.machine.path(directory)):
                os.chmod(self.machine.path(directory), 0o755)
        self.machine.cleanup()

    def assert_rejected(self, result, *fragments):
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertEqual(self.machine.store_bytes(), self.before)

    def newest_slot(self):
        directory = self.machine.path("/boot/bootstate")
        slots = {}
        for name in ("state.0", "state.1"):
            with open(os.path.join(directory, name), "rb") as file:
                slots[name] = file.read()
        newest = max(slots, key=lambda name: struct.unpack_from("<Q", slots[name], 12)[0])
        return newest, slots[newest]

    def newest_payload(self):
        return self.newest_slot()[1][32:]

    def write_newer_slot(self, payload, slot_format=1):
        """A checksum-valid slot with `payload` (bytes) and the next sequence, in the older slot
        file: the store's newest state. `before` becomes the store with it."""
        newest, data = self.newest_slot()
        self.assertEqual(struct.unpack_from("<I", data, 28)[0], crc32c(data[:28] + data[32:]))
        older = "state.1" if newest == "state.0" else "state.0"
        sequence = struct.unpack_from("<Q", data, 12)[0] + 1
        header = data[:8] + struct.pack("<IQQ", slot_format, sequence, len(payload))
        with open(os.path.join(self.machine.path("/boot/bootstate"), older), "wb") as file:
            file.write(header + struct.pack("<I", crc32c(header + payload)) + payload)
        self.before = self.machine.store_bytes()


class BadInput(StoreUnchangedCase):
    def write_plan_text(self, text):
        with open(self.machine.path("/nix/store/gen1/bootstate/plan.json"), "w") as file:
            file.write(text)

    def test_missing_plan(self):
        os.remove(self.machine.path("/nix/store/gen1/bootstate/plan.json"))
        self.assert_rejected(self.machine.run("post-activation"), "plan.json", "No such file")

    def test_malformed_plan(self):
        self.write_plan_text('{"schema":1,\n"generation": }')
        self.assert_rejected(self.machine.run("post-activation"), "plan.json:2:", "not valid JSON")

    def test_invalid_plan_names_the_json_path(self):
        plan = {"schema": 1, "generation": "/nix/store/gen1", "migrations": [
            {"id": "app", "policy": "required", "steps": [
                {"id": "a", "phase": "pre-mount", "kind": "command", "command": ["/bin/true"]}]}]}
        self.write_plan_text(json.dumps(plan))
        self.assert_rejected(self.machine.run("post-activation"),
                             'migrations[0].steps[0].phase: unknown phase "pre-mount"')

    def test_plan_of_another_generation(self):
        self.machine.write_plan("other", [])
        self.assert_rejected(
            self.machine.bootstate("--plan", "/nix/store/other/bootstate/plan.json",
                                   "run", "--phase", "post-activation"),
            "the plan belongs to generation /nix/store/other")

    def test_kernel_command_line_without_a_generation(self):
        # init= must be TOPLEVEL/init (docs/DESIGN.md "Which init= names a generation").
        for init in ("init=/bin/sh", "init=nix/store/gen1/init", "quiet"):
            with open(self.machine.path("/proc/cmdline"), "w") as file:
                file.write(init + "\n")
            self.assert_rejected(self.machine.run("post-activation"),
                                 "/proc/cmdline: no init=TOPLEVEL/init")

    def test_unknown_migration_for_accept(self):
        self.assert_rejected(self.machine.bootstate("accept", "nope"), 'unknown migration "nope"')

    def test_required_migration_cannot_be_declined(self):
        self.assert_rejected(self.machine.bootstate("decline", "app"), "required")

    def test_usage_errors(self):
        self.assert_rejected(self.machine.bootstate("run"), "run needs --phase")
        self.assert_rejected(self.machine.bootstate("run", "--phase", "pre-mount"),
                             'unknown phase "pre-mount"')
        self.assert_rejected(self.machine.bootstate("frobnicate"), 'unknown command "frobnicate"')

    def test_state_written_by_a_newer_format(self):
        # A rolled-back (older) bootstate must refuse a store a newer one wrote, not overwrite it.
        self.write_newer_slot(self.newest_payload(), slot_format=99)
        self.assert_rejected(self.machine.run("post-activation"),
                             "state format 99 is newer than this bootstate supports")
        self.assert_rejected(self.machine.bootstate("accept", "app"), "state format 99")

    def test_read_only_esp(self):
        # A new generation with work to commit, on an ESP mounted read-only (a bind mount in a
        # private mount namespace: root would ignore mode bits).
        m = self.machine
        m.write_plan("gen2", [{"id": "more", "policy": "required", "steps": [
            command_step("b", [STEP_TOOL, "append", m.path("/var/lib/log"), "b"])]}])
        m.boot_into("gen2")
        esp = m.path("/boot")
        if os.geteuid() == 0 and shutil.which("unshare"):
            command = ["unshare", "-m", "--", "sh", "-c",
                       'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
                       'exec "$@"', "sh", esp, BOOTSTATE, "--root", m.root,
                       "run", "--phase", "post-activation"]
        else:
            os.chmod(esp + "/bootstate", stat.S_IRUSR | stat.S_IXUSR)
            command = [BOOTSTATE, "--root", m.root, "run", "--phase", "post-activation"]
        result = subprocess.run(command, capture_output=True, text=True)
        self.assert_rejected(result, "Read-only file system" if os.geteuid() == 0 else "denied")
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # nothing ran without a commit


class HostileInput(StoreUnchangedCase):
    """Issue #13 items 8-10 through the binary: input that crashed bootstate (SIGSEGV) or that
    the validator accepted. Each ends with exit 2 (or a clean read) and a byte-identical store."""

    def plan_path(self):
        return self.machine.path("/nix/store/gen1/bootstate/plan.json")

    def write_plan_bytes(self, data):
        with open(self.plan_path(), "wb") as file:
            file.write(data)

    def write_migrations(self, migrations):
        self.machine.write_plan("gen1", migrations)

    def run_bytes(self, *arguments):
        """bootstate with stdout and stderr as bytes (text=True would hide invalid UTF-8)."""
        return subprocess.run([BOOTSTATE, "--root", self.machine.root] + list(arguments),
                              capture_output=True, timeout=120)

    # -- item 8: crashes ----------------------------------------------------------------------

    def test_plan_nested_130000_deep(self):
        self.write_plan_bytes(b"[" * 130000 + b"]" * 130000)
        self.assert_rejected(self.machine.run("post-activation"),
                             "plan.json:1:129: arrays and objects nested deeper than 128 levels")
        self.assert_rejected(self.machine.bootstate("preview", "/nix/store/gen1"),
                             "nested deeper than 128 levels")

    def test_after_chain_100000_long_with_a_cycle(self):
        count = 100000
        self.write_migrations([
            {"id": "m%d" % i, "policy": "required", "after": ["m%d" % ((i + 1) % count)],
             "steps": [command_step("s", ["/bin/true"])]} for i in range(count)])
        self.assert_rejected(self.machine.run("post-activation"),
                             "migrations[0].after: dependency cycle m0 → m1 → m2 → m3 → "
                             "… (99992 more) → m99996 → m99997 → m99998 → m99999 → m0")

    def test_slot_with_an_unknown_field_nested_300000_deep(self):
        payload = self.newest_payload()
        self.assertTrue(payload.startswith(b"{"))
        self.write_newer_slot(b'{"future": ' + b"[" * 300000 + b"]" * 300000 + b"," + payload[1:])
        result = self.machine.bootstate("status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("nested deeper than 128 levels", result.stdout + result.stderr)
        self.assertEqual(self.machine.store_bytes(), self.before)

    def test_slot_with_a_long_number_in_an_unknown_field(self):
        payload = self.newest_payload()
        number = b"530002.912" + b"9" * 50 + b"5e-400"
        self.write_newer_slot(b'{"future": ' + number + b"," + payload[1:])
        result = self.run_bytes("--json", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout.decode("utf-8"))["migrations"][0]["id"], "app")
        self.assertEqual(self.machine.store_bytes(), self.before)
        self.assertEqual(self.machine.boot(), 0)  # and the next run reads it and commits

    def test_number_whose_exponent_overflows_rapidjson(self):
        # rapidjson 1.1.0 adds the leading zeros to the exponent in an int that overflows, then
        # indexes its table of powers of ten with it: out of bounds, in plans and payloads.
        number = b"0." + b"0" * 100 + b"1e-2147483600"
        text = json.dumps({"schema": 1, "generation": "/nix/store/gen1", "x": 0}).encode()
        self.write_plan_bytes(text.replace(b'"x": 0', b'"x": ' + number))
        self.assert_rejected(self.machine.run("post-activation"),
                             "a number with an exponent of more than 4 digits")
        payload = self.newest_payload()
        self.write_newer_slot(b'{"future": ' + number + b"," + payload[1:])
        result = self.machine.bootstate("status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("a number with an exponent of more than 4 digits",
                      result.stdout + result.stderr)
        self.assertEqual(self.machine.store_bytes(), self.before)

    def test_slot_with_a_nul_after_its_json_text(self):
        # Session 14: both state readers stopped at the NUL, and only the limits scan read past
        # it; a checksum-valid slot with bytes after a NUL was taken as its text before the NUL.
        # Now it is a damaged slot, like one with any other bytes after its text: the older one
        # is read, and the status names the NUL.
        payload = self.newest_payload()
        self.write_newer_slot(payload.rstrip() + b"\0" + b"[" * 200)
        result = self.run_bytes("--json", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"a NUL byte", result.stdout + result.stderr)
        self.assertEqual(json.loads(result.stdout.decode("utf-8"))["migrations"][0]["state"],
                         "applied")
        self.assertEqual(self.machine.store_bytes(), self.before)
        self.assertEqual(self.machine.boot(), 0)  # the next boot reads the older slot, runs on

    # -- item 9: a newer bootstate's state ----------------------------------------------------

    def test_newest_slot_with_an_unknown_word_is_not_overwritten(self):
        payload = self.newest_payload()
        self.assertIn(b'"state": "applied"', payload)
        self.write_newer_slot(payload.replace(b'"state": "applied"', b'"state": "paused"', 1))
        for arguments in (("run", "--phase", "post-activation"), ("accept", "app"), ("status",)):
            self.assert_rejected(self.machine.bootstate(*arguments),
                                 "was written by a newer bootstate",
                                 'unknown migration state "paused"')

    def test_rolled_back_boot_over_a_newer_state_runs_nothing_and_says_why(self):
        # The admin boots an older generation (its bootstate older than the one that wrote the
        # newest state) with work pending in every phase. Each phase's unit fails (exit 2: no
        # fallback arranged, so no reboot; post-activation's failure keeps boot-complete.target
        # from being reached), runs nothing, writes nothing; every reading command says why.
        m = self.machine
        payload = self.newest_payload()
        self.write_newer_slot(payload.replace(b'"state": "applied"', b'"state": "paused"', 1))
        m.write_plan("gen0", [{"id": "old-%s" % phase, "policy": "required", "steps": [
            command_step("s", [STEP_TOOL, "append", m.path("/var/lib/log"), phase], phase=phase)]}
            for phase in ("initrd-pre-mount", "pre-switch-root", "post-activation")])
        for boot in range(2):
            m.boot_into("gen0")
            m.reboot()
            for phase in ("initrd-pre-mount", "pre-switch-root", "post-activation"):
                self.assert_rejected(m.run(phase), "was written by a newer bootstate",
                                     "does not write over it")
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # gen1's step only, nothing of gen0's
        for arguments in (("status",), ("--json", "status"), ("preview", "/nix/store/gen0"),
                          ("history",), ("log",), ("metrics",), ("accept", "old-post-activation"),
                          ("retry", "app")):
            self.assert_rejected(m.bootstate(*arguments), "was written by a newer bootstate")
        # The documented way to give that state up: rename the slots to .broken (kept, not
        # deleted); the next run starts a fresh state that counts as a lost store.
        directory = m.path("/boot/bootstate")
        for name in ("state.0", "state.1"):
            os.rename(os.path.join(directory, name), os.path.join(directory, name + ".broken"))
        result = m.run("initrd-pre-mount")
        self.assertIn("slots moved aside earlier are there (.broken)", result.stderr)
        self.assertIn("the state store was lost", result.stderr)
        self.assertEqual(m.lines("/var/lib/log"), ["a"])  # held until `accept`, not run
        self.assertEqual(m.migration("old-initrd-pre-mount")["readiness"], "held")

    # -- item 10: accepted by the validator but must not be ------------------------------------

    def test_backup_paths_with_dot_components_or_control_characters(self):
        for path, message in (("/var/lib/../../etc", '"/var/lib/../../etc" has a ".." component'),
                              ("/var/./lib", '"/var/./lib" has a "." component'),
                              ("/var//lib", '"/var//lib" has an empty component'),
                              ("/var/lib\nx", '"/var/lib\\nx" holds a control character'),
                              ("/var/lib\u0000x", "contains a NUL byte")):
            self.write_migrations([{"id": "app", "policy": "required", "backup": ["/ok", path],
                                    "steps": [command_step("a", ["/bin/true"])]}])
            self.assert_rejected(self.machine.run("post-activation"),
                                 "migrations[0].backup[1]: ", message)

    def test_nul_in_a_command_argument_or_environment(self):
        for step, where in (
                (command_step("a", ["/bin/tr\u0000ue"]), "steps[0].command[0]"),
                (command_step("a", ["/bin/true", "x\u0000y"]), "steps[0].command[1]"),
                (command_step("a", ["/bin/true"], check=["/bin/c\u0000"]), "steps[0].check[0]"),
                (command_step("a", ["/bin/true"], environment={"A": "\u0000"}),
                 "steps[0].environment.A"),
                (command_step("a", ["/bin/true"], environment={"A\u0000": "x"}),
                 "steps[0].environment: a key")):
            text = json.dumps({"schema": 1, "generation": "/nix/store/gen1", "migrations": [
                {"id": "app", "policy": "required", "steps": [step]}]})
            self.write_plan_bytes(text.encode())  # json.dumps writes the NUL as \u0000
            self.assert_rejected(self.machine.run("post-activation"),
                                 "migrations[0]." + where, "contains a NUL byte")

    def test_invalid_utf8_in_a_plan_string(self):
        text = json.dumps({"schema": 1, "generation": "/nix/store/gen1", "migrations": [
            {"id": "app", "policy": "required", "description": "DESC",
             "steps": [command_step("a", ["/bin/true"])]}]}).encode()
        for bad in (b"caf\xc3", b"\xff", b"\xed\xa0\x80", b"\\udc00"):
            self.write_plan_bytes(text.replace(b"DESC", bad))
            self.assert_rejected(self.machine.run("post-activation"),
                                 "migrations[0].description: not valid UTF-8")
            self.assert_rejected(self.machine.bootstate("preview", "/nix/store/gen1"),
                                 "migrations[0].description: not valid UTF-8")

    def test_status_json_is_valid_utf8_whatever_the_state_holds(self):
        # A state string that is not UTF-8 (the store keeps bytes as they are; a state written
        # before plans were checked can hold one): status --json must still be JSON.
        payload = self.newest_payload()
        self.assertIn(b'"last_good_generation": "/nix/store/gen1"', payload)
        self.write_newer_slot(payload.replace(b'"last_good_generation": "/nix/store/gen1"',
                                              b'"last_good_generation": "/nix/store/gen1\xff\xc3"'))
        result = self.run_bytes("--json", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        status = json.loads(result.stdout.decode("utf-8"))  # strict: raises on invalid UTF-8
        self.assertIn("/nix/store/gen1\ufffd\ufffd", json.dumps(status, ensure_ascii=False))
        self.assertEqual(self.machine.store_bytes(), self.before)

    def test_empty_boot_id(self):
        for boot_id in ("", "\n", "two words\n", "a\x01b\n"):
            with open(self.machine.path("/proc/sys/kernel/random/boot_id"), "w") as file:
                file.write(boot_id)
            self.assert_rejected(self.machine.run("post-activation"),
                                 "/proc/sys/kernel/random/boot_id: not a boot id")

if __name__ == "__main__":
    unittest.main()

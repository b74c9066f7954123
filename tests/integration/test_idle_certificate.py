"""The idle certificate (core/store_idle.hpp, issue #17): an idle run decides from DIR/idle and
the slot headers. These cases try to make it skip work it must do, or trust what it must not."""

import calendar
import os
import time
import unittest

from harness import Machine, PHASES, STEP_TOOL, command_step


def append_step(machine, step_id):
    log = machine.path("/var/lib/log")
    return command_step(step_id, [STEP_TOOL, "append", log, step_id])


class IdleCertificate(unittest.TestCase):
    def setUp(self):
        self.m = Machine()
        self.addCleanup(self.m.cleanup)
        self.certificate = self.m.path("/boot/bootstate/idle")

    def settle(self, migrations):
        m = self.m
        m.write_plan("gen2", migrations)
        m.boot_into("gen2")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        self.assertEqual(m.boot(), 0)  # idle: the full parse finds it settled, certifies
        self.assertTrue(os.path.exists(self.certificate))

    def read_certificate(self):
        with open(self.certificate, "rb") as file:
            return file.read()

    def assert_times_between(self, times, earliest, latest):
        self.assertTrue(times)
        for text in times:
            self.assertIsNotNone(text, "a time status shows is null (0: the clock was not read)")
            seconds = calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S UTC"))
            self.assertGreaterEqual(seconds, int(earliest), text)
            self.assertLessEqual(seconds, latest + 1, text)

    def test_runs_with_work_read_the_clock_around_idle_boots(self):
        """An idle run reads no clock (a54d38a): a run that finds work reads it once the
        certificate does not hold. Every time such a run records is now, not 0, through idle
        boots and then the admin booting the older generation, which undoes the migration."""
        m = self.m
        earliest = time.time()
        m.write_plan("gen1", [])
        m.boot_into("gen1")
        self.assertEqual(m.boot(), 0)
        m.reboot()
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")],
                      "undo": [append_step(m, "back")]}])
        m.reboot()
        self.assertEqual(m.boot(), 0)  # idle, from the certificate
        status = m.status()
        step = status["migrations"][0]["steps"][0]
        self.assert_times_between([step["started"], step["finished"],
                                   status["attempt"]["started"], status["attempt"]["finished"]],
                                  earliest, time.time())
        m.reboot()
        m.boot_into("gen1")  # the older generation: gen2's migration is undone
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a", "back"])
        status = m.status()
        app = m.migration("app")
        self.assertEqual(app["state"], "undone")
        self.assert_times_between([app["undo_steps"][0]["started"],
                                   app["undo_steps"][0]["finished"],
                                   status["attempt"]["started"]], earliest, time.time())

    def test_idle_run_from_certificate_writes_nothing(self):
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(self.m, "a")]}])
        before = self.m.store_bytes()
        self.m.reboot()
        self.assertEqual(self.m.boot(), 0)
        self.assertEqual(self.m.store_bytes(), before)
        self.assertEqual(self.m.lines("/var/lib/log"), ["a"])

    def test_stale_certificate_with_pending_state_does_not_skip(self):
        # The certificate says idle for sequence S; `accept` commits S+1 with work pending for
        # the same plan (same plan file): the run must see the work.
        m = self.m
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")]},
                     {"id": "extra", "policy": "optional", "steps": [append_step(m, "x")]}])
        certificate = self.read_certificate()
        self.assertEqual(m.bootstate("accept", "extra").returncode, 0)
        with open(self.certificate, "rb") as file:
            self.assertEqual(file.read(), certificate, "accept does not touch the certificate")
        m.reboot()
        m.boot()
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a", "x"])

    def test_damaged_certificate_is_ignored(self):
        m = self.m
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")]},
                     {"id": "extra", "policy": "optional", "steps": [append_step(m, "x")]}])
        self.assertEqual(m.bootstate("accept", "extra").returncode, 0)
        # Flip a byte in the certificate: its own checksum fails.
        data = bytearray(self.read_certificate())
        data[20] ^= 0xFF
        with open(self.certificate, "wb") as file:
            file.write(bytes(data))
        m.reboot()
        m.boot()
        m.reboot()
        self.assertEqual(m.boot(), 0)
        self.assertEqual(m.lines("/var/lib/log"), ["a", "x"])

    def test_changed_plan_is_parsed(self):
        m = self.m
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")]}])
        # The same generation's plan rewritten in place (same path): its identity changes.
        m.write_plan("gen2", [{"id": "app", "policy": "required", "steps": [append_step(m, "a")]},
                              {"id": "more", "policy": "required",
                               "steps": [append_step(m, "b")]}])
        m.reboot()
        for _ in range(3):
            if m.boot() == 0:
                break
            m.reboot()
        self.assertEqual(m.lines("/var/lib/log"), ["a", "b"])

    def test_newer_slot_than_certified_is_not_idle(self):
        # A commit torn after its header reached the disk shows a higher sequence than the
        # certified one: the full parse decides (it takes the intact older slot).
        m = self.m
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")]}])
        slots = [m.path("/boot/bootstate/state.%d" % n) for n in (0, 1)]
        newest = max((p for p in slots if os.path.exists(p)), key=os.path.getmtime)
        other = slots[1] if newest == slots[0] else slots[0]
        with open(newest, "rb") as file:
            data = bytearray(file.read())
        seq = int.from_bytes(data[12:20], "little") + 1
        data[12:20] = seq.to_bytes(8, "little")  # its checksum now fails: a torn commit
        with open(other, "wb") as file:
            file.write(bytes(data[:len(data) // 2]))
        m.reboot()
        result = m.run("post-activation")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("unusable", result.stderr, "the full parse ran and saw the torn slot")

    def test_symlink_in_place_of_certificate_is_not_followed(self):
        m = self.m
        self.settle([{"id": "app", "policy": "required", "steps": [append_step(m, "a")]}])
        target = m.path("/var/lib/victim")
        with open(target, "w") as file:
            file.write("keep\n")
        os.remove(self.certificate)
        os.symlink(target, self.certificate)
        m.reboot()
        for phase in PHASES:
            result = m.run(phase)
            self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("symbolic link", result.stderr)
        with open(target) as file:
            self.assertEqual(file.read(), "keep\n")

    def test_power_cut_around_the_certificate_write(self):
        for mode in ("before", "after", "torn"):
            with self.subTest(mode=mode):
                m = Machine()
                try:
                    m.write_plan("gen2", [{"id": "app", "policy": "required",
                                           "steps": [append_step(m, "a")]},
                                          {"id": "extra", "policy": "optional",
                                           "steps": [append_step(m, "x")]}])
                    m.boot_into("gen2")
                    m.run("initrd-pre-mount")
                    m.run("pre-switch-root")
                    m.run("post-activation", env={"BOOTSTATE_TEST_CRASH_AT": "idle:" + mode})
                    m.reboot()
                    self.assertEqual(m.boot(), 0)
                    self.assertEqual(m.bootstate("accept", "extra").returncode, 0)
                    m.reboot()
                    m.boot()
                    m.reboot()
                    self.assertEqual(m.boot(), 0)
                    self.assertEqual(m.lines("/var/lib/log"), ["a", "x"])
                    self.assertEqual(m.migration("extra")["state"], "applied")
                finally:
                    m.cleanup()


if __name__ == "__main__":
    unittest.main()

# (a) One migration, four steps across three boots: an initrd step, a step that asks for a
# reboot, a step after it, and an idempotent step interrupted by a power cut (machine.crash()).
{ pkgs, module }:
let
  common = import ./common.nix { inherit module; };
  script = name: text: pkgs.writeShellScript name ''
    set -eu
    ${text}
  '';
in
{
  name = "bootstate-multi-step-reboot";
  nodes.machine =
    { ... }:
    {
      imports = [ common.node ];
      boot.state.migrations.multi = {
        description = "three boots, one power cut";
        steps = [
          {
            id = "in-initrd";
            phase = "pre-switch-root";
            # The initrd has coreutils in /bin; the script itself needs nothing else.
            command = script "in-initrd" ''
              PATH=/bin
              mkdir -p /sysroot/var/lib/mt
              echo done > /sysroot/var/lib/mt/in-initrd
            '';
            idempotent = true;
          }
          {
            id = "before-reboot";
            command = script "before-reboot" ''
              ${pkgs.coreutils}/bin/cat /proc/sys/kernel/random/boot_id > /var/lib/mt/before-reboot
            '';
            idempotent = true;
            reboot = true;
          }
          {
            id = "after-reboot";
            command = script "after-reboot" ''
              ${pkgs.coreutils}/bin/cat /proc/sys/kernel/random/boot_id > /var/lib/mt/after-reboot
            '';
            idempotent = true;
          }
          {
            id = "cut-once";
            # First run: leaves a mark and hangs until the test cuts the power.
            command = script "cut-once" ''
              PATH=${pkgs.coreutils}/bin
              if [ ! -e /var/lib/mt/cut-once.started ]; then
                touch /var/lib/mt/cut-once.started; sync
                sleep 3600
              fi
              echo done > /var/lib/mt/cut-once
            '';
            idempotent = true;
          }
        ];
      };
    };

  testScript = common.testLib + ''
    machine.start()
    # Boot 1: in-initrd and before-reboot run, then bootstate reboots.
    reboot_by_bootstate(machine)
    # Boot 2: after-reboot runs, cut-once starts and hangs: cut the power.
    machine.wait_for_file("/var/lib/mt/cut-once.started")
    st = status(machine)
    assert st["attempt"]["state"] == "in-progress", st["attempt"]
    assert step(migration(st, "multi"), "cut-once")["state"] == "running"
    machine.crash()
    # Boot 3: cut-once was interrupted; it is idempotent, so it runs again and completes.
    machine.start()
    machine.wait_for_unit("bootstate-post-activation.service")
    machine.wait_for_unit("boot-complete.target")
    st = status(machine)
    mig = migration(st, "multi")
    assert st["attempt"]["state"] == "complete", st["attempt"]
    assert mig["state"] == "applied", mig
    for s in ["in-initrd", "before-reboot", "after-reboot", "cut-once"]:
        assert step(mig, s)["state"] == "done", step(mig, s)
    assert step(mig, "cut-once")["attempts"] == 2, step(mig, "cut-once")
    assert step(mig, "in-initrd")["phase"] == "pre-switch-root"
    assert st["last_good"] == booted(machine), st
    b1 = machine.succeed("cat /var/lib/mt/before-reboot").strip()
    b2 = machine.succeed("cat /var/lib/mt/after-reboot").strip()
    assert b1 != b2, "the reboot between the steps did not happen"
    # The completing boot ends blessed: the entry of this generation has no counter left.
    entry = machine.succeed(f"grep -l 'init={booted(machine)}/init' /boot/loader/entries/*.conf").strip()
    assert "+" not in entry.split("/")[-1], entry
  '';
}

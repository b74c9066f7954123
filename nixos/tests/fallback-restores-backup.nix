# (b) An update whose required migration fails: the entry is marked bad, the machine falls
# back to the previous generation, and the backup taken before the first step is restored.
{ pkgs, module }:
let
  common = import ./common.nix { inherit module; };
  base = {
    imports = [ common.node ];
    systemd.tmpfiles.rules = [ "d /var/lib/app 0755 root root -" ];
  };
  update = {
    imports = [ base ];
    boot.state.migrations.data-v2 = {
      description = "convert /var/lib/app to format 2 (fails half way)";
      backup = [ "/var/lib/app" ];
      steps = [
        {
          id = "convert";
          command = pkgs.writeShellScript "convert" "echo v2 > /var/lib/app/data";
          idempotent = true;
        }
        {
          id = "verify";
          command = pkgs.writeShellScript "verify" "echo 'verification failed' >&2; exit 1";
        }
      ];
    };
  };
in
common.upgradeTest {
  name = "bootstate-fallback-restores-backup";
  inherit base update;
  script = updated: ''
      machine.start()
      machine.wait_for_unit("boot-complete.target")
      old = booted(machine)
      machine.succeed("echo v1 > /var/lib/app/data; sync")
      boot_into(machine, "${updated}")
      # Boot into the update: convert runs, verify fails, bootstate marks the entry bad and
      # reboots; systemd-boot then picks the previous generation.
      reboot_by_bootstate(machine)
      machine.wait_for_unit("bootstate-post-activation.service")
      assert booted(machine) == old, "did not fall back to the previous generation"
      st = status(machine)
      assert st["attempt"]["generation"] == "${updated}", st["attempt"]
      assert st["attempt"]["state"] in ("failed", "abandoned"), st["attempt"]
      mig = migration(st, "data-v2")
      assert mig["state"] == "undone", mig
      assert step(mig, "verify")["state"] == "failed", mig
      assert machine.succeed("cat /var/lib/app/data").strip() == "v1", "backup not restored"
      assert st["last_good"] == old, st
  '';
}

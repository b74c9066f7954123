# (e) A partition grown before the root file system is mounted (initrd-pre-mount, libfdisk),
# kept when the generation goes away.
{ pkgs, module }:
let
  common = import ./common.nix { inherit module; };
  base = {
    imports = [ common.node ];
    virtualisation.emptyDiskImages = [ 64 ]; # /dev/vdb, 64 MiB
    environment.systemPackages = [ pkgs.util-linux ];
  };
  update =
    { config, ... }:
    let
      inherit (config.boot.state.lib) storageStep ops;
    in
    {
      imports = [ base ];
      boot.state.migrations.grow-data = {
        description = "grow the data partition to the end of its disk";
        keep = true;
        steps = [
          (storageStep {
            id = "grow";
            operations = [
              (ops.require { device = "/dev/vdb"; })
              (ops.growPartition {
                disk = "/dev/vdb";
                partition = "PARTLABEL=data";
              })
            ];
            preview = "grow PARTLABEL=data on /dev/vdb to the end of the disk";
          })
        ];
      };
    };
in
common.upgradeTest {
  name = "bootstate-storage-grow";
  inherit base update;
  script = updated: ''
      machine.start()
      machine.wait_for_unit("boot-complete.target")
      machine.succeed("printf 'label: gpt\nsize=16MiB, name=data\n' | sfdisk /dev/vdb")
      machine.succeed("udevadm settle; test -e /dev/disk/by-partlabel/data")
      small = int(machine.succeed("lsblk -b -n -o SIZE /dev/disk/by-partlabel/data").strip())
      assert small <= 16 * 1024 * 1024, small
      boot_into(machine, "${updated}")
      machine.wait_for_unit("bootstate-post-activation.service")
      machine.succeed("udevadm settle")
      big = int(machine.succeed("lsblk -b -n -o SIZE /dev/disk/by-partlabel/data").strip())
      assert big > 60 * 1024 * 1024, big
      st = status(machine)
      mig = migration(st, "grow-data")
      assert mig["state"] == "applied", mig
      s = step(mig, "grow")
      assert s["phase"] == "initrd-pre-mount" and s["state"] == "done", s
      assert st["attempt"]["state"] == "complete", st["attempt"]
      # The initrd unit ran before the root file system was mounted.
      machine.succeed("journalctl -b -o cat -u bootstate-initrd-pre-mount.service | grep -q .")
  '';
}

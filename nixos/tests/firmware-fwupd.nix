# (d) A firmware step through fwupd's fake test device ("Integrated Webcam", 1.2.2), updated
# to 1.2.4 with the cabinet from fwupd's installed tests; firmware is kept, never undone.
{ pkgs, module }:
let
  common = import ./common.nix { inherit module; };
  base = {
    imports = [ common.node ];
    services.fwupd = {
      enable = true;
      daemonSettings = {
        TestDevices = true; # fwupd >= 2: the fake devices
        OnlyTrusted = false; # the test cabinets are unsigned
        DisabledPlugins = pkgs.lib.mkForce [ ];
      };
    };
  };
  update =
    { config, ... }:
    {
      imports = [ base ];
      boot.state.migrations.webcam-fw = {
        description = "fake webcam firmware 1.2.4";
        steps = [
          (config.boot.state.lib.firmwareStep {
            id = "flash";
            # GUID of fwupd's fake webcam (plugins/test); unverified here, see docs/NIXOS.md.
            device = "b585990a-003e-5270-89d5-3705a17f9a43";
            cabinet = "${pkgs.fwupd.installedTests}/share/installed-tests/fwupd/fakedevice124.cab";
            version = "1.2.4";
            preview = "fake webcam 1.2.2 -> 1.2.4";
          })
        ];
      };
    };
in
common.upgradeTest {
  name = "bootstate-firmware-fwupd";
  inherit base update;
  script = updated: ''
      machine.start()
      machine.wait_for_unit("boot-complete.target")
      base = booted(machine)
      boot_into(machine, "${updated}")
      machine.wait_for_unit("bootstate-post-activation.service")
      st = status(machine)
      mig = migration(st, "webcam-fw")
      assert mig["state"] == "applied", mig
      assert step(mig, "flash")["state"] == "done", mig
      # The fake device forgets its version when fwupd restarts; the install is in the history.
      machine.succeed("fwupdmgr get-history --json | grep -q 1.2.4")

      with subtest("firmware is machine state: kept when the generation goes away"):
          boot_into(machine, base)
          machine.wait_for_unit("bootstate-post-activation.service")
          mig = migration(status(machine), "webcam-fw")
          assert mig["state"] != "undone", mig
  '';
}

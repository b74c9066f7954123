# What every bootstate VM test machine has: UEFI, systemd-boot with boot counting, the
# systemd initrd, bootstate. `testLib` is Python shared by the test scripts; `upgradeTest`
# is the shape of a test that boots `base`, then makes `update` the system profile's newest
# generation, installs it with `switch-to-configuration boot` and reboots into it.
{ module }:
rec {
  node =
    { lib, ... }:
    {
      imports = [ module ];
      virtualisation.useBootLoader = true;
      virtualisation.useEFIBoot = true;
      boot.loader.systemd-boot.enable = true;
      boot.loader.efi.canTouchEfiVariables = true;
      boot.initrd.systemd.enable = true;
      boot.state.enable = true;
      boot.state.tries = 3;
      virtualisation.memorySize = lib.mkDefault 1024;
    };

  testLib = ''
    import json

    def status(m):
        return json.loads(m.succeed("bootstate --json status"))

    def migration(st, mid):
        found = [x for x in st["migrations"] if x["id"] == mid]
        assert found, f"migration {mid} not in status: {st['migrations']}"
        return found[0]

    def step(mig, sid):
        found = [x for x in mig["steps"] if x["id"] == sid]
        assert found, f"step {sid} not in {mig['id']}: {mig['steps']}"
        return found[0]

    def booted(m):
        return m.succeed("readlink -f /run/booted-system").strip()

    def boot_into(m, toplevel):
        # As `nixos-rebuild boot` and a reboot: the generation becomes the newest one of the
        # system profile, then its switch-to-configuration writes the entries. The systemd-boot
        # builder writes entries only for profile generations (nixpkgs' nixos/tests/
        # systemd-boot.nix does the same `nix-env --set` first); without it the default entry
        # stays the booted one and the test would never boot `toplevel`.
        m.succeed(f"nix-env -p /nix/var/nix/profiles/system --set {toplevel}")
        m.succeed(f"{toplevel}/bin/switch-to-configuration boot")
        m.shutdown()
        m.start()

    def reboot_by_bootstate(m):
        # bootstate reboots by itself; the test VM runs with -no-reboot, so that is a shutdown.
        m.wait_for_shutdown()
        m.start()
  '';

  # `script` gets the update's toplevel and returns the Python that follows testLib.
  upgradeTest =
    {
      name,
      base,
      update,
      script,
    }:
    {
      inherit name;
      nodes.machine =
        { nodes, ... }:
        {
          imports = [ base ];
          system.extraDependencies = [ nodes.update.system.build.toplevel ];
        };
      nodes.update = update;
      testScript = { nodes, ... }: testLib + script nodes.update.system.build.toplevel;
    };
}

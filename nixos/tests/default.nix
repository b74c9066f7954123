# The NixOS VM tests of bootstate, as `checks` of the flake (pkgs.testers.runNixOSTest).
# Each test asserts on `bootstate --json status` (docs/DESIGN.md "Command line").
{ pkgs, module }:
let
  run = file: pkgs.testers.runNixOSTest (import file { inherit pkgs module; });
in
{
  nixos-multi-step-reboot = run ./multi-step-reboot.nix;
  nixos-fallback-restores-backup = run ./fallback-restores-backup.nix;
  nixos-postgresql-upgrade = run ./postgresql-upgrade.nix;
  nixos-firmware-fwupd = run ./firmware-fwupd.nix;
  nixos-storage-grow = run ./storage-grow.nix;
}

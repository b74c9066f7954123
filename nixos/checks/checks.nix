# Three checks of docs/CHECKS.md as entries of the plan's `checks` (docs/DESIGN.md "Checks and
# resolutions"), in plan syntax: a user whose uid changes, a kernel feature the running kernel
# lacks, free space for the backups.
#
# Builtins only, no nixpkgs: tests/integration/test_example_checks.py evaluates this file with
# plain `nix-instantiate --eval` and runs exactly the plan entries it renders through the
# bootstate binary, so the declaration and the tested commands cannot drift apart. On NixOS the
# `exe` arguments are store paths (pkgs.writeShellApplication of the scripts beside this file,
# with coreutils, findutils, gawk, gnugrep, gzip in runtimeInputs).
{
  # A user declared with a fixed uid, and the directories that hold its files.
  #   account { exe = ".../bootstate-check-account"; user = "app"; uid = 1001;
  #             dirs = [ "/var/lib/app" ]; }
  account =
    {
      exe,
      user,
      uid,
      dirs,
      recordDir ? "/var/lib/bootstate-checks/account",
      id ? "account-${user}",
      phase ? "post-activation",
      timeout ? 3600,
    }:
    let
      args =
        [
          "--user"
          user
          "--uid"
          (toString uid)
          "--record-dir"
          recordDir
        ]
        ++ builtins.concatMap (d: [
          "--dir"
          d
        ]) dirs;
      step = stepId: action: preview: {
        id = stepId;
        inherit phase timeout preview;
        kind = "command";
        command = [
          exe
          action
        ] ++ args;
        # A re-run finds the old uid in the record and changes only what is still left.
        idempotent = true;
      };
    in
    {
      inherit id phase;
      description = "${user} has uid ${toString uid} here, as the generation declares";
      command = [
        exe
        "check"
      ] ++ args;
      timeout = 60;
      resolutions = [
        {
          id = "chown-data";
          description = "give the files of ${user} under ${builtins.concatStringsSep ", " dirs} from its old uid to ${toString uid} (undone by giving them back)";
          steps = [ (step "chown" "chown" "chown the files of ${user} owned by its old uid to ${toString uid}") ];
          undo = [ (step "chown-back" "undo" "give the files of ${user} back to its old uid") ];
        }
      ];
    };

  # File system types and kernel options the generation's kernel (release kernelRelease) has
  # and the running kernel must have too.
  #   kernelFeatures { exe = ...; kernelRelease = config.boot.kernelPackages.kernel.modDirVersion;
  #                    filesystems = [ "bcachefs" ]; configs = [ "CONFIG_WIREGUARD" ]; }
  kernelFeatures =
    {
      exe,
      kernelRelease,
      filesystems ? [ ],
      configs ? [ ],
      id ? "kernel-features",
    }:
    let
      args =
        [
          "--kernel-release"
          kernelRelease
        ]
        ++ builtins.concatMap (f: [
          "--filesystem"
          f
        ]) filesystems
        ++ builtins.concatMap (c: [
          "--config"
          c
        ]) configs;
    in
    {
      inherit id;
      description = "the running kernel has what the generation needs (${builtins.concatStringsSep ", " (filesystems ++ configs)})";
      phase = "post-activation";
      command = [
        exe
        "check"
      ] ++ args;
      timeout = 30;
      resolutions = [
        {
          id = "reboot-into-new-kernel";
          description = "boot the generation with its own kernel ${kernelRelease}: its step runs in the initrd, so a live switch stops (reboot required) and the boot verifies the features";
          steps = [
            {
              id = "verify-kernel";
              # In the initrd: no live switch can run it, only a boot of this generation,
              # which is a boot of its kernel. Nothing to undo: it changes nothing.
              phase = "pre-switch-root";
              kind = "command";
              command = [
                exe
                "verify"
              ] ++ args;
              idempotent = true;
              timeout = 30;
              preview = "verify that the booted kernel has ${builtins.concatStringsSep ", " (filesystems ++ configs)}";
            }
          ];
          keep = true;
        }
      ];
    };

  # The paths the generation's migrations back up, against the free space where bootstate
  # keeps backups.
  #   freeSpace { exe = ...; paths = [ "/var/lib/postgresql" ]; }
  freeSpace =
    {
      exe,
      paths,
      backupsDir ? "/var/lib/bootstate/backups",
      marginPercent ? 10,
      id ? "free-space",
      phase ? "post-activation",
    }:
    {
      inherit id phase;
      description = "the file system of ${backupsDir} has room for the backups of ${builtins.concatStringsSep ", " paths}";
      command =
        [
          exe
          "--backups-dir"
          backupsDir
          "--margin-percent"
          (toString marginPercent)
        ]
        ++ builtins.concatMap (p: [
          "--path"
          p
        ]) paths;
      timeout = 600;
      resolutions = [ ];
    };
}

# The example checks of docs/CHECKS.md as options: each renders its plan entry with ./checks.nix
# (the function the integration test evaluates and runs) into boot.state.checks.
#
#   boot.state.accountChecks.app = { uid = 1001; dirs = [ "/var/lib/app" ]; };
#   boot.state.kernelFeatureCheck = { enable = true; filesystems = [ "btrfs" ]; };
#   boot.state.backupSpaceCheck.enable = true;   # paths: every migration's `backup`
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption mkEnableOption types literalExpression;
  cfg = config.boot.state;
  render = import ./checks.nix;

  # The scripts as programs with their tools on PATH (writeShellApplication adds errexit,
  # nounset and pipefail; the scripts are written for that) .
  program =
    name: runtimeInputs:
    "${
      pkgs.writeShellApplication {
        inherit name runtimeInputs;
        text = builtins.readFile (./. + "/${name}.sh");
      }
    }/bin/${name}";
  accountExe = program "bootstate-check-account" [
    pkgs.coreutils
    pkgs.findutils
    pkgs.gawk
    pkgs.gnused
  ];
  kernelExe = program "bootstate-check-kernel" [
    pkgs.coreutils
    pkgs.gawk
    pkgs.gzip
  ];
  freeSpaceExe = program "bootstate-check-free-space" [
    pkgs.coreutils
    pkgs.gawk
  ];

  backupPaths = lib.unique (
    lib.concatMap (m: m.backup) (lib.attrValues (lib.filterAttrs (_: m: m.enable) cfg.migrations))
  );
  noNewline = s: !(lib.hasInfix "\n" s) && lib.hasPrefix "/" s;
in
{
  options.boot.state = {
    accountChecks = mkOption {
      type = types.attrsOf (
        types.submodule {
          options = {
            uid = mkOption {
              type = types.ints.unsigned;
              description = "The uid this generation gives the user (its users.users.<name>.uid).";
            };
            dirs = mkOption {
              type = types.listOf types.str;
              default = [ ];
              description = "Directories holding the user's files: chown-data moves those of the old uid.";
            };
          };
        }
      );
      default = { };
      example = literalExpression ''{ app = { uid = 1001; dirs = [ "/var/lib/app" ]; }; }'';
      description = ''
        Per user name: a check (id `account-<name>`) that the machine's /etc/passwd and the
        owners of `dirs` agree with `uid`, offering `chown-data` (undone by chowning back)
        when the user's uid changes. docs/CHECKS.md "A user whose uid changes".
      '';
    };

    kernelFeatureCheck = {
      enable = mkEnableOption ''
        a check that the running kernel has the file system types and options this
        generation needs, with `reboot-into-new-kernel` as the resolution (its step runs in the
        initrd, so a live switch is refused and a boot verifies). docs/CHECKS.md'';
      kernelRelease = mkOption {
        type = types.str;
        default = config.boot.kernelPackages.kernel.modDirVersion;
        defaultText = literalExpression "config.boot.kernelPackages.kernel.modDirVersion";
        description = "The release of this generation's kernel (`uname -r` once booted).";
      };
      filesystems = mkOption {
        type = types.listOf (types.strMatching "[a-z0-9_.-]+");
        default = [ ];
        example = [ "btrfs" ];
        description = "File system types (as /proc/filesystems names them).";
      };
      configs = mkOption {
        type = types.listOf (types.strMatching "CONFIG_[A-Z0-9_]+");
        default = [ ];
        example = [ "CONFIG_WIREGUARD" ];
        description = "Kernel options that must be `y` or `m` in /proc/config.gz.";
      };
    };

    backupSpaceCheck = {
      enable = mkEnableOption ''
        a check that the file system of bootstate's backups has room for the backups this
        generation's migrations take (error when they do not fit, warning when less than
        `marginPercent` would be left; no resolution). docs/CHECKS.md'';
      paths = mkOption {
        type = types.listOf types.str;
        default = backupPaths;
        defaultText = literalExpression "the `backup` paths of the enabled boot.state.migrations";
        description = "Paths whose size is summed (add those of resolutions that back up).";
      };
      backupsDir = mkOption {
        type = types.str;
        default = "/var/lib/bootstate/backups";
        description = "Where bootstate keeps backups.";
      };
      marginPercent = mkOption {
        type = types.ints.between 0 100;
        default = 10;
        description = "Warn when less than this share of the file system would stay free.";
      };
    };
  };

  config = lib.mkMerge [
    {
      boot.state.checks = lib.mapAttrsToList (
        user: a:
        render.account {
          exe = accountExe;
          inherit user;
          inherit (a) uid dirs;
        }
      ) cfg.accountChecks;
      assertions = lib.mapAttrsToList (user: a: {
        assertion = builtins.match "[a-z0-9_.-]{1,32}" user != null && builtins.all noNewline a.dirs;
        message = "boot.state.accountChecks.${user}: the name must be of [a-z0-9_.-] (at most 32), dirs absolute paths without a newline.";
      }) cfg.accountChecks;
    }
    (lib.mkIf cfg.kernelFeatureCheck.enable {
      boot.state.checks = [
        (render.kernelFeatures {
          exe = kernelExe;
          inherit (cfg.kernelFeatureCheck) kernelRelease filesystems configs;
        })
      ];
    })
    (lib.mkIf cfg.backupSpaceCheck.enable {
      boot.state.checks = [
        (render.freeSpace {
          exe = freeSpaceExe;
          inherit (cfg.backupSpaceCheck) paths backupsDir marginPercent;
        })
      ];
      assertions = [
        {
          assertion = builtins.all noNewline (cfg.backupSpaceCheck.paths ++ [ cfg.backupSpaceCheck.backupsDir ]);
          message = "boot.state.backupSpaceCheck: paths and backupsDir must be absolute, without a newline.";
        }
      ];
    })
  ];
}

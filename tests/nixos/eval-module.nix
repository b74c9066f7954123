# Evaluates nixos/module.nix (which imports nixos/postgresql/module.nix) with nixpkgs' own module
# system — lib.evalModules, lib.types — against the stubs of tests/nixos/eval-stubs.nix.
# A developer tool, not a ctest: it needs a nixpkgs `lib` directory, which CI does not have.
#   tests/nixos/eval-module.sh NIXPKGS_LIB_DIR
# `good.<name>`: configurations that must evaluate with no failed assertion; their summary
# forces the plan texts, the three units, the initrd mount and store paths, the pre-switch
# check, assertions and warnings. `bad.<name>`: configurations that must fail an assertion
# whose message contains `expect`.
{ nixpkgsLib }:
let
  lib = import nixpkgsLib;
  stubsWith = withBootCounting: import ./eval-stubs.nix { inherit lib withBootCounting; };
  stubs = stubsWith true;
  inherit (stubs) pkgs drv;
  module = ../../nixos/module.nix;

  # What qemu-vm.nix is assumed to give the VM tests (docs/NIXOS.md "Not verified").
  vmEsp = {
    fileSystems."/boot" = {
      device = "/dev/disk/by-label/ESP";
      fsType = "vfat";
    };
  };
  # A machine's hardware-configuration.nix.
  hardware = {
    fileSystems."/" = {
      device = "/dev/disk/by-label/nixos";
      fsType = "ext4";
    };
    fileSystems."/boot" = {
      device = "/dev/disk/by-uuid/1234-ABCD";
      fsType = "vfat";
    };
  };

  eval =
    {
      modules,
      withBootCounting ? true,
    }:
    let
      s = stubsWith withBootCounting;
    in
    lib.evalModules {
      modules = [
        s.module
        s.postgresqlDefaults
        module
      ] ++ modules;
    };

  failedAssertions = cfg: map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions);

  unit =
    u:
    {
      inherit (u)
        description
        wantedBy
        requiredBy
        wants
        requires
        after
        before
        conflicts
        unitConfig
        ;
    }
    // lib.optionalAttrs (u ? serviceConfig) { inherit (u) serviceConfig restartTriggers; }
    // lib.optionalAttrs (u ? where) { inherit (u) what where type options; };

  summary =
    c:
    let
      cfg = c.config;
      st = cfg.boot.state;
    in
    {
      failedAssertions = failedAssertions cfg;
      inherit (cfg) warnings;
      planTemplate = st.build.planTemplate.text;
      initrdPlan = st.build.initrdPlan.text;
      planTemplatePath = "${st.build.planTemplate}";
      initrdContents = lib.mapAttrs (n: f: {
        inherit (f) enable target;
        source = "${f.source}";
      }) cfg.boot.initrd.systemd.contents;
      storePaths = map (p: "${p.source}") cfg.boot.initrd.systemd.storePaths;
      # make-initrd-ng copies what the .note.dlopen notes of these name (docs/NIXOS.md).
      storePathsDlopen = map (p: p.dlopen or null) cfg.boot.initrd.systemd.storePaths;
      availableKernelModules = cfg.boot.initrd.availableKernelModules;
      initrdMounts = map unit cfg.boot.initrd.systemd.mounts;
      initrdServices = lib.mapAttrs (n: unit) cfg.boot.initrd.systemd.services;
      services = lib.mapAttrs (n: unit) cfg.systemd.services;
      preSwitchCheck = cfg.system.preSwitchChecks.bootstate;
      systemBuilderCommands = cfg.system.systemBuilderCommands;
      tmpfiles = cfg.systemd.tmpfiles.rules;
      systemPackages = map (p: p.name) cfg.environment.systemPackages;
      bootCounting = cfg.boot.loader.systemd-boot.bootCounting or null;
      espDevice = st.espDevice;
      migrations = builtins.attrNames st.migrations;
    };

  # docs/NIXOS.md "Use", verbatim but for the hardware configuration.
  docsUse =
    { config, pkgs, ... }:
    let
      inherit (config.boot.state.lib) storageStep firmwareStep ops;
    in
    {
      boot.initrd.systemd.enable = true; # required (asserted)
      boot.loader.systemd-boot.enable = true;
      boot.state.enable = true;
      boot.state.migrations = {
        grow-root = {
          description = "Grow the root partition";
          keep = true; # harmless to older generations: never undone
          steps = [
            (storageStep {
              id = "grow";
              operations = [
                (ops.growPartition {
                  disk = "/dev/nvme0n1";
                  partition = "PARTLABEL=root";
                })
              ];
            })
          ];
        };
        move-data = {
          backup = [ "/srv/data" ]; # restored on rollback (no undo steps given)
          steps = [
            {
              id = "move";
              command = pkgs.writeShellScript "move" "mv /srv/data /var/lib/data";
              check = pkgs.writeShellScript "moved" "test -d /var/lib/data";
              before = [ "myapp.service" ];
            }
          ];
        };
      };
      boot.state.postgresql.upgrade = {
        enable = true;
        oldPackage = pkgs.postgresql_15;
      };
    };

  # The VM tests' node configurations, taken the way `nix flake check` takes them: flake.nix's
  # nixosModules.default handed to nixos/tests/default.nix, whose pkgs.testers.runNixOSTest is
  # stubbed to return the test unchanged.
  flake = (import ../../flake.nix).outputs {
    self = { };
    nixpkgs = { inherit lib; };
  };
  vmTests = import ../../nixos/tests {
    pkgs = pkgs // {
      testers.runNixOSTest = test: test;
    };
    module = flake.nixosModules.default;
  };
  updateToplevel = drv "nixos-system-update" { };
  nodesArg = {
    _module.args.nodes.update.system.build.toplevel = updateToplevel;
  };
  vmNode =
    test: name:
    let
      t = vmTests.${test};
      script = if builtins.isFunction t.testScript then t.testScript { nodes.update.system.build.toplevel = updateToplevel; } else t.testScript;
    in
    summary (eval {
      modules = [
        t.nodes.${name}
        vmEsp
        nodesArg
      ];
    })
    // {
      testScriptLength = builtins.stringLength script;
    };

  # A minimal good configuration the negative cases start from.
  minimal = {
    imports = [ hardware ];
    boot.initrd.systemd.enable = true;
    boot.loader.systemd-boot.enable = true;
    boot.state.enable = true;
  };
  # The configuration whose units tests/nixos/render-units.sh renders for the VM tier: the
  # minimal one with the ESP where tests/vm/vmimage.py puts it (ESP_PARTUUID), so the rendered
  # bootstate.mount names the VM's ESP device.
  vmRender = {
    boot.initrd.systemd.enable = true;
    boot.loader.systemd-boot.enable = true;
    boot.state.enable = true;
    fileSystems."/" = {
      device = "/dev/disk/by-label/nixos";
      fsType = "ext4";
    };
    fileSystems."/boot" = {
      device = "/dev/disk/by-partuuid/6a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b";
      fsType = "vfat";
    };
  };
  script = name: pkgs.writeShellScript name "true";
  bad = expect: modules: {
    inherit expect;
    failedAssertions = failedAssertions (eval { modules = [ minimal ] ++ modules; }).config;
  };
in
{
  # Units of vmRender, with their option values, for tests/nixos/render-units.nix.
  vm = summary (eval { modules = [ vmRender ]; });
  good = {
    docs-use = summary (eval {
      modules = [
        docsUse
        hardware
      ];
    });
    docs-use-without-boot-counting = summary (eval {
      withBootCounting = false;
      modules = [
        docsUse
        hardware
      ];
    });
    disabled = {
      failedAssertions = failedAssertions (eval { modules = [ hardware ]; }).config;
      inherit ((eval { modules = [ hardware ]; }).config) warnings;
    };
    minimal = summary (eval { modules = [ minimal ]; });
    # A Nix path as command (copied into the store) in an initrd phase, a package with
    # meta.mainProgram as check, args appended, the ESP given explicitly.
    path-command = summary (eval {
      modules = [
        minimal
        {
          boot.state.espDevice = "/dev/vda1";
          boot.state.extraArgs = [ "--verbose" ];
          boot.state.migrations.m.steps = [
            {
              id = "s";
              phase = "pre-switch-root";
              command = [
                ../../nixos/gcroots.sh
                "--flag"
              ];
              args = [ "/sysroot" ];
              check = pkgs.bootstate;
              initrdStorePaths = [ pkgs.coreutils ];
            }
          ];
        }
      ];
    });
    postgresql-ordering = summary (eval {
      modules = [
        minimal
        { services.postgresql.enable = true; }
      ];
    });
    # docs/CHECKS.md's examples as options, with the PostgreSQL version check: rendered into
    # both plan copies (plan_check parses them), the kernel check's initrd step in storePaths.
    example-checks = summary (eval {
      modules = [
        minimal
        {
          services.postgresql.enable = true;
          boot.state.postgresql.versionCheck.enable = true;
          boot.state.migrations.m = {
            backup = [ "/var/lib/data" ];
            steps = [
              {
                id = "s";
                command = script "s";
              }
            ];
            # Offered by s's items; the step in an initrd phase puts its program in the initrd.
            resolutions = [
              {
                id = "fix-it";
                description = "repair what s reports";
                steps = [
                  {
                    id = "fix";
                    phase = "pre-switch-root";
                    kind = "command";
                    command = [ "${script "fix-in-initrd"}" ];
                  }
                ];
              }
            ];
          };
          boot.state.accountChecks.app = {
            uid = 1001;
            dirs = [ "/var/lib/app" ];
          };
          boot.state.kernelFeatureCheck = {
            enable = true;
            kernelRelease = "6.6.1";
            filesystems = [ "btrfs" ];
            configs = [ "CONFIG_WIREGUARD" ];
          };
          boot.state.backupSpaceCheck.enable = true;
        }
      ];
    });
    vm-multi-step-reboot = vmNode "nixos-multi-step-reboot" "machine";
    vm-fallback-restores-backup-machine = vmNode "nixos-fallback-restores-backup" "machine";
    vm-fallback-restores-backup-update = vmNode "nixos-fallback-restores-backup" "update";
    vm-postgresql-upgrade-machine = vmNode "nixos-postgresql-upgrade" "machine";
    vm-postgresql-upgrade-update = vmNode "nixos-postgresql-upgrade" "update";
    vm-firmware-fwupd-update = vmNode "nixos-firmware-fwupd" "update";
    vm-storage-grow-update = vmNode "nixos-storage-grow" "update";
  };

  bad = {
    # FailureAction= is gone (DESIGN "A live switch"); a configuration still setting it is told.
    failure-action-removed = bad "no longer has any effect" [ { boot.state.failureAction = "none"; } ];
    systemd-initrd-disabled = bad "needs the systemd initrd" [
      { boot.initrd.systemd.enable = lib.mkForce false; }
    ];
    no-esp-device = bad "cannot tell the ESP's device" [
      { fileSystems = lib.mkForce { }; }
    ];
    invalid-migration-id = bad "invalid migration id" [
      { boot.state.migrations."Bad_Id".steps = [ { id = "s"; command = script "s"; } ]; }
    ];
    invalid-step-id = bad "invalid step id" [
      { boot.state.migrations.m.steps = [ { id = "no spaces"; command = script "s"; } ]; }
    ];
    no-steps = bad "needs at least one step" [ { boot.state.migrations.m.steps = [ ]; } ];
    command-missing = bad "a command step needs `command`" [
      { boot.state.migrations.m.steps = [ { id = "s"; } ]; }
    ];
    command-relative = bad "a command step needs `command`" [
      { boot.state.migrations.m.steps = [ { id = "s"; command = [ "rm" "-rf" "/x" ]; } ]; }
    ];
    check-relative = bad "`check` must start with an absolute path" [
      {
        boot.state.migrations.m.steps = [
          {
            id = "s";
            command = script "s";
            check = [ "test" "-e" "/x" ];
          }
        ];
      }
    ];
    storage-in-post-activation = bad "a storage step needs `operations` and an initrd phase" [
      (
        { config, ... }:
        {
          boot.state.migrations.m.steps = [
            (config.boot.state.lib.storageStep {
              id = "grow";
              phase = "post-activation";
              operations = [
                (config.boot.state.lib.ops.growPartition {
                  disk = "/dev/vda";
                  partition = "2";
                })
              ];
            })
          ];
        }
      )
    ];
    storage-without-operations = bad "a storage step needs `operations` and an initrd phase" [
      (
        { config, ... }:
        {
          boot.state.migrations.m.steps = [
            (config.boot.state.lib.storageStep {
              id = "grow";
              operations = [ ];
            })
          ];
        }
      )
    ];
    firmware-incomplete = bad "a firmware step needs `device`, `cabinet` and `version`" [
      {
        boot.state.migrations.m.steps = [
          {
            id = "fw";
            kind = "firmware";
            device = "b585990a-003e-5270-89d5-3705a17f9a43";
          }
        ];
      }
    ];
    firmware-in-initrd = bad "runs in post-activation" [
      {
        boot.state.migrations.m.steps = [
          {
            id = "fw";
            kind = "firmware";
            phase = "pre-switch-root";
            device = "d";
            cabinet = drv "fw.cab" { };
            version = "1.0";
          }
        ];
      }
    ];
    reserved-environment = bad "environment names starting with BOOTSTATE_" [
      {
        boot.state.migrations.m.steps = [
          {
            id = "s";
            command = script "s";
            environment.BOOTSTATE_PHASE = "x";
          }
        ];
      }
    ];
    reserved-environment-in-undo = bad "boot.state.migrations.m.undo.u: environment names starting with BOOTSTATE_" [
      {
        boot.state.migrations.m = {
          steps = [ { id = "s"; command = script "s"; } ];
          undo = [
            {
              id = "u";
              command = script "u";
              environment.BOOTSTATE_X = "x";
            }
          ];
        };
      }
    ];
    after-unknown = bad "names a migration this plan does not have" [
      {
        boot.state.migrations.m = {
          after = [ "nope" ];
          steps = [ { id = "s"; command = script "s"; } ];
        };
      }
    ];
    after-disabled = bad "names a migration this plan does not have" [
      {
        boot.state.migrations.a = {
          enable = false;
          steps = [ { id = "s"; command = script "s"; } ];
        };
        boot.state.migrations.m = {
          after = [ "a" ];
          steps = [ { id = "s"; command = script "s"; } ];
        };
      }
    ];
    backup-before-mount = bad "the first step runs before root is mounted" [
      {
        boot.state.migrations.m = {
          backup = [ "/srv" ];
          steps = [
            {
              id = "s";
              phase = "initrd-pre-mount";
              command = script "s";
            }
          ];
        };
      }
    ];
    postgresql-same-dirs = bad "oldDataDir and newDataDir must differ" [
      {
        services.postgresql.enable = true;
        boot.state.postgresql.upgrade = {
          enable = true;
          oldPackage = pkgs.postgresql_15;
          oldDataDir = "/var/lib/postgresql/16";
        };
      }
    ];
  };
}

# NixOS module of bootstate: declares migrations, writes plan.json (schema 1) into the system
# closure and the initrd, and installs the three phase units (docs/DESIGN.md "Phases").
# Reference and design notes: docs/NIXOS.md.
{
  config,
  lib,
  pkgs,
  options,
  utils,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    mkDefault
    types
    literalExpression
    ;
  cfg = config.boot.state;
  planLib = import ./lib/plan.nix;

  phases = [
    "initrd-pre-mount"
    "pre-switch-root"
    "post-activation"
  ];
  isInitrdPhase = phase: phase != "post-activation";
  idPattern = "[a-z0-9][a-z0-9._-]{0,63}";
  validId = id: builtins.match idPattern id != null;

  # --- commands: a package, a path/script, or an argv list -----------------------------------
  commandType = types.oneOf [
    types.package
    types.path
    (types.listOf (
      types.oneOf [
        types.str
        types.path
        types.package
      ]
    ))
  ];
  # A package runs its meta.mainProgram; any other derivation (pkgs.writeShellScript …) or path
  # is the executable itself. A Nix path (./migrate.sh) is interpolated, which copies it into the
  # store: `toString` would give its location in the configuration's source tree, which does not
  # exist on the machine (found by tests/nixos/eval-module.nix).
  storeString = x: if builtins.isPath x then "${x}" else toString x;
  executableOf =
    x:
    if lib.isDerivation x then
      (if x ? meta.mainProgram then "${x}/bin/${x.meta.mainProgram}" else "${x}")
    else
      storeString x;
  toArgv =
    command:
    if builtins.isList command then
      (
        if command == [ ] then
          [ ]
        else
          [ (executableOf (builtins.head command)) ] ++ map storeString (builtins.tail command)
      )
    else
      [ (executableOf command) ];

  stepModule =
    { ... }:
    {
      options = {
        id = mkOption {
          type = types.str;
          description = "Step id, unique within its migration; `${idPattern}`.";
        };
        phase = mkOption {
          type = types.enum phases;
          default = "post-activation";
          description = ''
            Boot phase the step runs in: `initrd-pre-mount` (systemd initrd, before
            `sysroot.mount`; root not mounted), `pre-switch-root` (initrd, root at `/sysroot`,
            before NixOS activation) or `post-activation` (stage 2, before
            `boot-complete.target` and the units in `before`).
          '';
        };
        kind = mkOption {
          type = types.enum [
            "command"
            "storage"
            "firmware"
          ];
          default = "command";
          description = ''
            `command` runs a program; `storage` applies partition-table `operations` (initrd
            phases only); `firmware` installs a cabinet through fwupd (post-activation only).
          '';
        };
        command = mkOption {
          type = types.nullOr commandType;
          default = null;
          example = literalExpression ''pkgs.writeShellScript "move-data" "mv /srv/a /srv/b"'';
          description = ''
            What a `command` step runs, executed directly (never through a shell by bootstate):
            a package (its `meta.mainProgram`), a path or script (for example
            `pkgs.writeShellScript`), or an argv list whose first element is an absolute path,
            `[ "''${pkgs.e2fsprogs}/bin/resize2fs" "/dev/vda2" ]`.
          '';
        };
        args = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Arguments appended to `command`.";
        };
        check = mkOption {
          type = types.nullOr commandType;
          default = null;
          description = ''
            Optional program (same forms as `command`) that exits 0 when the step's effect is
            already there; bootstate runs it after an interrupted run of a step that is not
            `idempotent`, and for previews.
          '';
        };
        environment = mkOption {
          type = types.attrsOf types.str;
          default = { };
          description = "Environment of the command (names starting with `BOOTSTATE_` are reserved).";
        };
        idempotent = mkOption {
          type = types.bool;
          default = false;
          description = "The step may simply run again after an interruption (a power cut mid-step).";
        };
        user = mkOption {
          type = types.nullOr (types.either types.str types.ints.unsigned);
          default = null;
          example = "postgres";
          description = ''
            Run the command (and its `check`) as this user: its uid, primary and supplementary
            groups and home; the step's work directory is handed to it. A name only in
            post-activation (the initrd's account database is not the system's); a number
            anywhere. `null` = root.
          '';
        };
        group = mkOption {
          type = types.nullOr (types.either types.str types.ints.unsigned);
          default = null;
          description = "Primary group for the command instead of the user's (a name only in post-activation).";
        };
        timeout = mkOption {
          type = types.nullOr types.ints.positive;
          default = null;
          description = "Seconds the step may take; `null` = bootstate's default (600).";
        };
        reboot = mkOption {
          type = types.bool;
          default = false;
          description = "Reboot after this step, before the next step runs.";
        };
        preview = mkOption {
          type = types.str;
          default = "";
          description = "What the step does, in words; shown by `bootstate preview` and `status`.";
        };
        before = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "postgresql.service" ];
          description = ''
            Units that must not start before the post-activation phase is over (the phase is
            one unit, so this orders `bootstate-post-activation.service` before them). Not
            part of plan.json.
          '';
        };
        operations = mkOption {
          type = types.listOf (types.attrsOf types.anything);
          default = [ ];
          description = ''
            Storage operations in plan syntax; build them with `config.boot.state.lib.ops`
            (`growPartition`, `addPartition`, `setPartitionName`, `setPartitionType`,
            `setPartitionAttrs`, `require`).
          '';
        };
        device = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "Firmware: fwupd device id or a GUID of the device.";
        };
        cabinet = mkOption {
          type = types.nullOr (types.either types.path types.package);
          default = null;
          description = "Firmware: the `.cab` file (a path or a package whose out path is the file).";
        };
        version = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "Firmware: the version the device must run afterwards.";
        };
        allowOlder = mkOption {
          type = types.bool;
          default = false;
          description = "Firmware: allow installing an older version than the running one.";
        };
        allowReinstall = mkOption {
          type = types.bool;
          default = false;
          description = "Firmware: allow installing the version that already runs.";
        };
        initrdStorePaths = mkOption {
          type = types.listOf (types.either types.str types.package);
          default = [ ];
          description = ''
            Extra store paths an initrd-phase step needs in the initrd. The initrd does not
            copy closures: the step's program (and ELF libraries) are added automatically, but
            tools a script calls must be listed here.
          '';
        };
      };
    };
  stepType = types.submodule stepModule;

  migrationModule =
    { name, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether this generation's plan contains the migration.";
        };
        description = mkOption {
          type = types.str;
          default = name;
          description = "What the migration is for, in words.";
        };
        policy = mkOption {
          type = types.enum [
            "required"
            "recommended"
            "optional"
          ];
          default = "required";
          description = ''
            `required`: runs automatically, a failure fails the phase and the machine falls back
            to the previous generation. `recommended`: runs unless declined
            (`bootstate decline ID`); a failure is recorded and the boot goes on. `optional`:
            runs only after `bootstate accept ID`.
          '';
        };
        after = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Ids of migrations (in this plan) that must be applied first.";
        };
        backup = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = ''
            Absolute paths snapshotted before the first step (which must then run with root
            mounted); restored on undo when no `undo` steps are given.
          '';
        };
        keep = mkOption {
          type = types.bool;
          default = false;
          description = ''
            The effect is harmless to older generations (a grown partition): keep it instead of
            undoing it when the migration leaves the plan. Firmware is always kept.
          '';
        };
        steps = mkOption {
          type = types.listOf stepType;
          description = "The steps, in order.";
        };
        undo = mkOption {
          type = types.listOf stepType;
          default = [ ];
          description = "Steps that revert the migration when a generation without it boots.";
        };
        resolutions = mkOption {
          type = types.listOf types.attrs;
          default = [ ];
          description = ''
            Resolutions the migration's own steps may offer for an item they report (through
            $BOOTSTATE_ITEMS, docs/DESIGN.md "Items reported by a running step"), in plan syntax:
            each exactly a check resolution (`id`, `description`, `steps`, `undo`, ...). After
            `bootstate choose ITEM RESOLUTION`, the next boot runs it as migration
            `ID.RESOLUTION`, then this migration from its failed step. Rendered as given; the plan
            parser validates them (an error names `migrations[N].resolutions[R]`).
          '';
        };
      };
    };

  # --- normalised values → plan ------------------------------------------------------------
  normaliseStep = step: {
    inherit (step)
      id
      phase
      kind
      timeout
      reboot
      idempotent
      preview
      environment
      operations
      allowOlder
      allowReinstall
      ;
    user = if step.user == null then null else toString step.user;
    group = if step.group == null then null else toString step.group;
    command = if step.command == null then [ ] else toArgv step.command ++ step.args;
    check = if step.check == null then [ ] else toArgv step.check;
    device = if step.device == null then "" else step.device;
    cabinet = if step.cabinet == null then "" else "${step.cabinet}";
    version = if step.version == null then "" else step.version;
  };
  enabledMigrations = lib.filterAttrs (_: m: m.enable) cfg.migrations;
  migrationList = lib.mapAttrsToList (id: m: {
    inherit id;
    inherit (m)
      description
      policy
      after
      backup
      keep
      ;
    steps = map normaliseStep m.steps;
    undo = map normaliseStep m.undo;
    inherit (m) resolutions;
  }) enabledMigrations;
  allSteps = lib.concatMap (m: m.steps ++ m.undo) (lib.attrValues enabledMigrations);
  initrdSteps = builtins.filter (s: isInitrdPhase s.phase) allSteps;

  # The toplevel copy: its generation is filled in while the toplevel is built.
  planTemplate = pkgs.writeText "bootstate-plan-template.json" (
    planLib.planText {
      generation = planLib.generationPlaceholder;
      migrations = migrationList;
      inherit (cfg) checks;
    }
  );
  initrdPlan = pkgs.writeText "bootstate-initrd-plan.json" (
    planLib.planText {
      generation = planLib.initrdGeneration;
      migrations = migrationList;
      inherit (cfg) checks;
    }
  );

  # --- units -------------------------------------------------------------------------------
  espInitrd = "/bootstate";
  espInitrdUnit = "${utils.escapeSystemdPath espInitrd}.mount";
  bootstateCli = "${cfg.package}/bin/bootstate";
  commonArgs = lib.escapeShellArgs cfg.extraArgs;
  initrdExec =
    phase:
    "${bootstateCli} --esp ${espInitrd} --plan /etc/bootstate/plan.json ${commonArgs} run --phase ${phase}";
  # Disks the pre-mount storage steps touch: the phase waits for their device units.
  storageDevices = lib.unique (
    lib.concatMap (
      s:
      lib.concatMap (
        op:
        builtins.filter (d: d != null && lib.hasPrefix "/dev/" d) [
          (op.disk or null)
          (op.device or null)
        ]
      ) s.operations
    ) (builtins.filter (s: s.kind == "storage") initrdSteps)
  );
  storageDeviceUnits = map (d: "${utils.escapeSystemdPath d}.device") storageDevices;
  initrdExecutables = lib.concatMap (
    s:
    let
      n = normaliseStep s;
    in
    lib.take 1 n.command ++ lib.take 1 n.check ++ map toString s.initrdStorePaths
  ) initrdSteps;
  # The programs of checks and resolution steps that run in an initrd phase (argv[0]; the
  # initrd gets their closure), as for the migrations' steps above.
  # A migration's resolutions (plan syntax too) are steps of the same kind.
  resolutionInitrdExecutables = lib.concatMap (
    r:
    lib.concatMap (
      s: lib.optionals (isInitrdPhase s.phase) (lib.take 1 (s.command or [ ]) ++ lib.take 1 (s.check or [ ]))
    ) ((r.steps or [ ]) ++ (r.undo or [ ]))
  );
  checkInitrdExecutables =
    lib.concatMap (
      c:
      lib.optionals (isInitrdPhase c.phase) (lib.take 1 c.command)
      ++ resolutionInitrdExecutables (c.resolutions or [ ])
    ) cfg.checks
    ++ lib.concatMap (m: resolutionInitrdExecutables m.resolutions) (
      lib.attrValues enabledMigrations
    );
  beforeUnits = lib.unique (lib.concatMap (s: s.before) allSteps);
  hasFirmware = builtins.any (s: s.kind == "firmware") allSteps;

  # Libraries bootstate dlopens, by the `feature` of their `.note.dlopen` ELF note
  # (core/elf_dlopen_note.hpp). Recent make-initrd-ng reads the notes of a store path whose entry
  # has `dlopen` and copies the sonames it finds on the binary's RUNPATH (package.nix puts
  # util-linux and systemd there); naming the features includes them whatever their priority.
  # A nixpkgs whose storePaths have no `dlopen` copies only DT_NEEDED libraries: then the
  # libraries go in by path (the package's passthru.dlopenLibraries). docs/NIXOS.md.
  dlopenFeatures = [
    "fdisk"
    "blkid"
    "libsystemd"
  ];
  initrdStorePathOptions = options.boot.initrd.systemd.storePaths.type.getSubOptions [ ];
  storePathsReadDlopenNotes = initrdStorePathOptions ? dlopen;
  bootstateStorePaths =
    if storePathsReadDlopenNotes then
      [
        {
          source = bootstateCli;
          dlopen.features = dlopenFeatures;
        }
      ]
    else
      [ bootstateCli ] ++ map toString (cfg.package.passthru.dlopenLibraries or [ ]);

  gcroots = pkgs.writeShellApplication {
    name = "bootstate-gcroots";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.gnugrep
      pkgs.jq
    ];
    text = builtins.readFile ./gcroots.sh;
  };
  preSwitchCheck = pkgs.writeShellApplication {
    name = "bootstate-pre-switch-check";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.jq
    ];
    text = builtins.readFile ./pre-switch-check.sh;
  };

  hasBootCountingOption =
    options.boot.loader ? systemd-boot && options.boot.loader.systemd-boot ? bootCounting;
  espFileSystem = config.fileSystems.${cfg.espMountPoint} or null;
in
{
  imports = [
    ./postgresql/module.nix
    ./checks/module.nix
    # FailureAction= rebooted on any failure, exit 2 (a usage error, a plan of another
    # generation) and a failed live switch included; DESIGN "A live switch": a reboot only where
    # bootstate arranged a fallback, and bootstate then reboots by itself.
    (lib.mkRemovedOptionModule [
      "boot"
      "state"
      "failureAction"
    ] "bootstate reboots by itself when it has arranged a fallback; no unit reboots on failure.")
  ];

  options.boot.state = {
    enable = mkEnableOption "bootstate, migrations advanced at boot phases with boot-counting fallback";

    package = mkOption {
      type = types.package;
      default = pkgs.bootstate;
      defaultText = literalExpression "pkgs.bootstate";
      description = "The bootstate package (the flake's overlay provides `pkgs.bootstate`).";
    };

    tries = mkOption {
      type = types.ints.positive;
      default = 3;
      description = ''
        Boots without progress a new generation gets before systemd-boot falls back (sets
        `boot.loader.systemd-boot.bootCounting.tries`). A boot that completes a step re-arms
        the counter, so long migrations do not exhaust it.
      '';
    };

    migrations = mkOption {
      type = types.attrsOf (types.submodule migrationModule);
      default = { };
      description = ''
        The migrations this generation wants, by id (`${idPattern}`). Applied ones that a
        later generation no longer lists are undone in reverse order (their `undo` steps, else
        their `backup`), unless `keep`.
      '';
      example = literalExpression ''
        {
          move-data = {
            description = "Move /srv/data to /var/lib/data";
            backup = [ "/srv/data" ];
            steps = [{
              id = "move";
              command = pkgs.writeShellScript "move" "mv /srv/data /var/lib/data";
              check = pkgs.writeShellScript "moved" "test -d /var/lib/data";
              before = [ "myservice.service" ];
            }];
          };
        }
      '';
    };

    lib = mkOption {
      type = types.attrs;
      readOnly = true;
      default = import ./lib/helpers.nix;
      defaultText = literalExpression "import ./lib/helpers.nix";
      description = ''
        Helpers that build steps: `storageStep`, `firmwareStep`, `commandStep` and the storage
        operations in `ops` (`growPartition`, `addPartition`, `setPartitionName`,
        `setPartitionType`, `setPartitionAttrs`, `require`).
      '';
    };

    espMountPoint = mkOption {
      type = types.str;
      default = config.boot.loader.efi.efiSysMountPoint;
      defaultText = literalExpression "config.boot.loader.efi.efiSysMountPoint";
      description = "Where the ESP (which holds the state) is mounted in stage 2.";
    };

    espDevice = mkOption {
      type = types.nullOr types.str;
      default =
        if espFileSystem == null then
          null
        else if espFileSystem.device or null != null then
          espFileSystem.device
        else if espFileSystem.label or null != null then
          "/dev/disk/by-label/${espFileSystem.label}"
        else
          null;
      defaultText = literalExpression "config.fileSystems.\${config.boot.state.espMountPoint}.device";
      description = ''
        The ESP's device, mounted by the initrd at `/bootstate` for the two initrd phases
        (the root file system is not there yet, the state lives on the ESP).
      '';
    };

    espFsType = mkOption {
      type = types.str;
      default = "vfat";
      description = "File system type of the ESP.";
    };

    checks = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
      description = ''
        Checks in plan syntax (docs/DESIGN.md "Checks and resolutions"): each predicts whether
        this generation applies to the machine as it is and offers resolutions the operator
        chooses with `bootstate choose`. Rendered into both copies of the plan as given; the
        plan parser validates them (bad ones fail at boot and in preview, naming the field).
        The examples of docs/CHECKS.md declare theirs here: boot.state.postgresql.versionCheck,
        boot.state.accountChecks, boot.state.kernelFeatureCheck, boot.state.backupSpaceCheck.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--no-reboot" ];
      description = "Global options added to every `bootstate` command line the units run.";
    };

    initrdStorePaths = mkOption {
      type = types.listOf (types.either types.str types.package);
      default = [ ];
      description = "Store paths added to the initrd for the initrd-phase steps (see the step option of the same name).";
    };

    build = mkOption {
      type = types.attrs;
      readOnly = true;
      internal = true;
      description = "Derivations of the plan (`planTemplate`, `initrdPlan`), for tests.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      boot.state.build = { inherit planTemplate initrdPlan; };

      assertions =
        [
          {
            assertion = config.boot.initrd.systemd.enable;
            message = "boot.state needs the systemd initrd (boot.initrd.systemd.enable = true): its initrd phases are systemd units.";
          }
          {
            assertion = cfg.espDevice != null;
            message = "boot.state: cannot tell the ESP's device from fileSystems.\"${cfg.espMountPoint}\"; set boot.state.espDevice.";
          }
        ]
        ++ lib.concatLists (
          lib.mapAttrsToList (
            id: m:
            let
              where = "boot.state.migrations.${id}";
              stepChecks =
                list: what:
                lib.concatMap (
                  s:
                  let
                    n = normaliseStep s;
                    at = "${where}.${what}.${s.id}";
                  in
                  [
                    {
                      assertion = validId s.id;
                      message = "${at}: invalid step id (must match ${idPattern}).";
                    }
                    {
                      assertion = s.kind != "command" || (n.command != [ ] && lib.hasPrefix "/" (builtins.head n.command));
                      message = "${at}: a command step needs `command` (a package, a script or an argv list starting with an absolute path).";
                    }
                    {
                      assertion = s.check == null || (n.check != [ ] && lib.hasPrefix "/" (builtins.head n.check));
                      message = "${at}: `check` must start with an absolute path.";
                    }
                    {
                      assertion = s.kind != "storage" || (s.operations != [ ] && isInitrdPhase s.phase);
                      message = "${at}: a storage step needs `operations` and an initrd phase.";
                    }
                    {
                      assertion =
                        s.kind != "firmware"
                        || (s.device != null && s.cabinet != null && s.version != null && s.phase == "post-activation");
                      message = "${at}: a firmware step needs `device`, `cabinet` and `version`, and runs in post-activation.";
                    }
                    {
                      assertion =
                        !(isInitrdPhase s.phase)
                        || builtins.all (a: a == null || builtins.isInt a || builtins.match "[0-9]+" a != null) [
                          s.user
                          s.group
                        ];
                      message = "${at}: in an initrd phase `user` and `group` must be numbers (names are resolved in stage 2).";
                    }
                    {
                      assertion = !(builtins.any (lib.hasPrefix "BOOTSTATE_") (builtins.attrNames s.environment));
                      message = "${at}: environment names starting with BOOTSTATE_ are set by bootstate.";
                    }
                  ]
                ) list;
            in
            [
              {
                assertion = validId id;
                message = "${where}: invalid migration id (must match ${idPattern}).";
              }
              {
                assertion = m.steps != [ ];
                message = "${where}: a migration needs at least one step.";
              }
              {
                assertion = builtins.all (a: enabledMigrations ? ${a}) m.after;
                message = "${where}.after: names a migration this plan does not have.";
              }
              {
                assertion = m.backup == [ ] || m.steps == [ ] || (builtins.head m.steps).phase != "initrd-pre-mount";
                message = "${where}.backup: the first step runs before root is mounted; nothing to back up there.";
              }
            ]
            ++ stepChecks m.steps "steps"
            ++ stepChecks m.undo "undo"
          ) enabledMigrations
        );

      warnings =
        lib.optional (!hasBootCountingOption) ''
          boot.state: this nixpkgs has no boot.loader.systemd-boot.bootCounting; a failed phase then falls back through LoaderEntryOneShot only, and a boot that hangs is not counted.''
        ++ lib.optional (!config.boot.loader.systemd-boot.enable) ''
          boot.state: systemd-boot is not enabled; boot counting and the fallback it gives need it.'';

      # --- the plan, in the toplevel: `generation` is the toplevel's own path -------------
      # The plan is part of the toplevel, so it cannot name the toplevel as a build input; the
      # builder knows its $out and writes it in (docs/NIXOS.md). The template stays linked so
      # the GC-root helper can keep what undo steps need.
      system.systemBuilderCommands = ''
        mkdir -p $out/bootstate
        substitute ${planTemplate} $out/bootstate/plan.json \
          --subst-var-by ${lib.removePrefix "@" (lib.removeSuffix "@" planLib.generationPlaceholder)} "$out"
        ln -s ${planTemplate} $out/bootstate/plan-template.json
      '';

      environment.systemPackages = [ cfg.package ];
      systemd.tmpfiles.rules = [ "d /var/lib/bootstate 0700 root root -" ];

      # --- initrd: plan, executables, ESP mount, the two initrd phases ----------------------
      boot.initrd.availableKernelModules = [
        "vfat"
        "nls_cp437"
        "nls_iso8859-1"
      ];
      boot.initrd.systemd = {
        contents."/etc/bootstate/plan.json".source = initrdPlan;
        storePaths =
          bootstateStorePaths ++ initrdExecutables ++ checkInitrdExecutables ++ map toString cfg.initrdStorePaths;

        mounts = [
          {
            where = espInitrd;
            what = cfg.espDevice;
            type = cfg.espFsType;
            options = "rw,noatime,umask=0077";
            unitConfig.DefaultDependencies = false;
            # Unmounted before switch-root: stage 2 mounts the ESP where it belongs.
            conflicts = [ "initrd-switch-root.target" ];
            before = [ "initrd-switch-root.target" ];
          }
        ];

        services.bootstate-initrd-pre-mount = {
          description = "bootstate: initrd-pre-mount phase";
          wantedBy = [ "initrd.target" ];
          requires = [ espInitrdUnit ];
          wants = storageDeviceUnits;
          after = [ espInitrdUnit ] ++ storageDeviceUnits;
          before = [
            "sysroot.mount"
            "systemd-fsck-root.service"
            "initrd-root-fs.target"
            "shutdown.target"
          ];
          conflicts = [ "shutdown.target" ];
          # No FailureAction: bootstate reboots by itself after arranging a fallback; a failure
          # it did not arrange one for (exit 2, a crash) must not spend the machine's tries.
          unitConfig.DefaultDependencies = false;
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = initrdExec "initrd-pre-mount";
            NotifyAccess = "main";
            Delegate = true; # a cgroup per step (stage2/step_cgroup.hpp)
            TimeoutStartSec = "infinity"; # steps carry their own timeouts
          };
        };

        services.bootstate-pre-switch-root = {
          description = "bootstate: pre-switch-root phase";
          wantedBy = [ "initrd.target" ];
          requires = [ espInitrdUnit ];
          after = [
            "initrd-fs.target"
            espInitrdUnit
          ];
          before = [
            "initrd.target"
            "initrd-nixos-activation.service"
            "initrd-switch-root.target"
            "shutdown.target"
          ];
          conflicts = [ "shutdown.target" ];
          unitConfig = {
            DefaultDependencies = false;
            RequiresMountsFor = [ "/sysroot" ];
          };
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = initrdExec "pre-switch-root";
            NotifyAccess = "main";
            Delegate = true; # a cgroup per step (stage2/step_cgroup.hpp)
            TimeoutStartSec = "infinity";
          };
        };
      };

      # --- stage 2: post-activation, gating boot-complete.target ---------------------------
      systemd.services.bootstate-post-activation = {
        description = "bootstate: post-activation phase";
        wantedBy = [ "multi-user.target" ] ++ beforeUnits;
        requiredBy = [ "boot-complete.target" ];
        before = [ "boot-complete.target" ] ++ beforeUnits;
        wants = lib.optional hasFirmware "fwupd.service";
        after = lib.optional hasFirmware "fwupd.service";
        # A switch re-runs the phase when the migrations change (docs/DESIGN.md "Phases").
        restartTriggers = [ planTemplate ];
        unitConfig = {
          RequiresMountsFor = [
            cfg.espMountPoint
            "/var/lib/bootstate"
          ];
          # No FailureAction (DESIGN "A live switch"): a switch restarts this unit; exit 2 (usage,
          # a plan that is not this generation's) and a failed switch attempt (undone, exit 1)
          # must fail the unit without rebooting. At boot, bootstate itself reboots when it has
          # arranged a fallback.
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          # 4: a switch attempt found initrd work pending: "reboot required", not a failure.
          SuccessExitStatus = "4";
          NotifyAccess = "main"; # STATUS= and EXTEND_TIMEOUT_USEC= from bootstate
          Delegate = true; # a cgroup per step (stage2/step_cgroup.hpp)
          # GC roots first, so whatever this boot applies keeps its undo programs.
          ExecStartPre = "${gcroots}/bin/bootstate-gcroots add ${planTemplate}";
          ExecStart = "${bootstateCli} --esp ${cfg.espMountPoint} --plan /run/current-system/bootstate/plan.json ${commonArgs} run --phase post-activation";
          ExecStartPost = "-${gcroots}/bin/bootstate-gcroots prune ${planTemplate} ${bootstateCli} --esp ${cfg.espMountPoint}";
          TimeoutStartSec = "infinity";
        };
      };

      # --- a live switch may not skip initrd-phase work -----------------------------------
      system.preSwitchChecks.bootstate = ''
        ${preSwitchCheck}/bin/bootstate-pre-switch-check "$1" "''${2-}" ${bootstateCli} --esp ${cfg.espMountPoint}
      '';
    }

    (lib.optionalAttrs hasBootCountingOption {
      boot.loader.systemd-boot.bootCounting = {
        enable = mkDefault true;
        tries = mkDefault cfg.tries;
      };
    })
  ]);
}

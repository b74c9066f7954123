# boot.state.postgresql.upgrade: a PostgreSQL major upgrade as a bootstate migration.
#
# The steps are nixos/postgresql/bootstate-pg.sh (tested against real PostgreSQL by
# tests/postgresql): `upgrade` = initdb like the old cluster + pg_upgrade in copy mode (the old
# data directory stays as it was); undo = `downgrade`, which dumps the newer cluster with the
# newer tools and restores into a fresh older cluster (what was written after the upgrade
# survives a rollback); the old directories are moved aside, never deleted.
#
# boot.state.postgresql.versionCheck: the check of docs/CHECKS.md "PostgreSQL" (data directory
# vs. the configured server's major version) with its resolutions pg-upgrade, dump-restore and
# restore-backup, rendered by ./check.nix into `boot.state.checks`. Off by default until the
# engine accepts `checks` in the plan (docs/DESIGN.md "Checks and resolutions").
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption mkEnableOption mkIf types literalExpression;
  cfg = config.boot.state.postgresql.upgrade;
  pg = config.services.postgresql;

  bootstatePg = pkgs.writeShellApplication {
    name = "bootstate-pg";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.util-linux # setpriv
      pkgs.gnused
      pkgs.gnugrep
      pkgs.findutils
    ];
    text = builtins.readFile ./bootstate-pg.sh;
  };
  environment = {
    PG_OLD_BINDIR = "${cfg.oldPackage}/bin";
    PG_NEW_BINDIR = "${cfg.newPackage}/bin";
    PG_OLD_DATADIR = cfg.oldDataDir;
    PG_NEW_DATADIR = cfg.newDataDir;
    PG_USER = cfg.user;
  } // lib.optionalAttrs (cfg.initdbArgs != [ ]) { PG_INITDB_ARGS = lib.concatStringsSep " " cfg.initdbArgs; };
  exe = "${bootstatePg}/bin/bootstate-pg";
  # --- the version check ---------------------------------------------------------------------
  checkCfg = config.boot.state.postgresql.versionCheck;
  engineHasChecks = options.boot.state ? checks;
  checkExe = pkgs.writeShellApplication {
    name = "bootstate-pg-check";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.gnused
    ];
    text = builtins.readFile ./bootstate-pg-check.sh;
  };
  resolveExe = pkgs.writeShellApplication {
    name = "bootstate-pg-resolve";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.gnused
      pkgs.gawk
      pkgs.gnugrep
    ];
    text = builtins.readFile ./bootstate-pg-resolve.sh;
  };
  serverMajor = lib.toInt (lib.versions.major checkCfg.package.version);
  # nixpkgs' postgresql_N, or null where that major is not (or no longer: a throwing alias) there.
  postgresqlOfMajor =
    n:
    let
      found = builtins.tryEval (pkgs."postgresql_${toString n}" or null);
    in
    if found.success then found.value else null;
  checkDeclaration = import ./check.nix {
    checkExe = "${checkExe}/bin/bootstate-pg-check";
    resolveExe = "${resolveExe}/bin/bootstate-pg-resolve";
    inherit (checkCfg) id dataDir link backupDataDir timeout;
    serverBindir = "${checkCfg.package}/bin";
    otherBindirs = map (p: "${p}/bin") checkCfg.otherPackages;
    user = "postgres"; # the unit's User= in nixpkgs' postgresql module
  };

  oldVersion = cfg.oldPackage.version or "old";
  newVersion = cfg.newPackage.version or "new";
in
{
  options.boot.state.postgresql = {
    orderAfterBootstate = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Start postgresql.service only after bootstate's post-activation phase, so an upgrade
        (or, after a rollback, its undo) is finished before the server opens the data
        directory. Keep it on in every generation that may be rolled back to.
      '';
    };

    versionCheck = {
      enable = mkEnableOption ''
        the bootstate check that compares the PostgreSQL data directory's major version
        (PG_VERSION) with the configured server's and offers pg-upgrade and dump-restore (data
        older) or dump-restore and restore-backup (data newer) as resolutions
        (docs/CHECKS.md). Needs a bootstate whose plan accepts `checks`: until then, enabling
        it fails an assertion'';
      id = mkOption {
        type = types.strMatching "[a-z0-9][a-z0-9._-]{0,63}";
        default = "postgresql-version";
        description = "Check id; a chosen resolution runs as migration `<id>.<resolution>`.";
      };
      package = mkOption {
        type = types.package;
        default = pg.finalPackage or pg.package;
        defaultText = literalExpression "config.services.postgresql.finalPackage";
        description = ''
          The server the data must fit, with its extensions (what pg_upgrade and the restore
          run with). Its major version is read from `postgres --version` when the check runs.
        '';
      };
      dataDir = mkOption {
        type = types.str;
        default = pg.dataDir;
        defaultText = literalExpression "config.services.postgresql.dataDir";
        description = "The data directory checked and resolved.";
      };
      otherPackages = mkOption {
        type = types.listOf types.package;
        default = builtins.filter (p: p != null) (
          map postgresqlOfMajor [
            (serverMajor - 1)
            (serverMajor + 1)
          ]
        );
        defaultText = literalExpression "the nixpkgs postgresql_N one major below and above package";
        description = ''
          PostgreSQL packages of other majors, part of the system closure: a resolution needs
          the data's own server (to dump it, or as pg_upgrade's old side) and the newer
          version's client tools. Data of a major not listed here can be detected, not
          resolved (the step says which major is missing).
        '';
      };
      link = mkOption {
        type = types.bool;
        default = false;
        description = ''
          pg-upgrade with `--link`: seconds instead of a copy of the data, but the kept-aside
          old directory is unusable once the new server has started.
        '';
      };
      backupDataDir = mkOption {
        type = types.bool;
        default = true;
        description = ''
          pg-upgrade and dump-restore declare `backup = [ dataDir ]`, so bootstate keeps a
          copy of the data as it was (costs its size on disk); restore-backup puts such a copy
          back on a later downgrade.
        '';
      };
      timeout = mkOption {
        type = types.ints.positive;
        default = 6 * 3600;
        description = "Seconds each resolution step (and its undo) may take.";
      };
      declaration = mkOption {
        type = types.attrs;
        readOnly = true;
        default = checkDeclaration;
        defaultText = literalExpression "import ./check.nix { ... }";
        description = "The check in plan syntax, as it goes into `boot.state.checks` (for tests and the engine's module).";
      };
    };

    upgrade = {
      enable = mkEnableOption "a PostgreSQL major-version upgrade run by bootstate (pg_upgrade, undone by dump/restore)";
      id = mkOption {
        type = types.str;
        default = "postgresql-upgrade-${cfg.oldPackage.psqlSchema or "old"}-to-${cfg.newPackage.psqlSchema or "new"}";
        defaultText = literalExpression ''"postgresql-upgrade-''${oldPackage.psqlSchema}-to-''${newPackage.psqlSchema}"'';
        description = "Migration id.";
      };
      oldPackage = mkOption {
        type = types.package;
        example = literalExpression "pkgs.postgresql_15";
        description = "The PostgreSQL package the existing cluster was created with.";
      };
      newPackage = mkOption {
        type = types.package;
        default = pg.package;
        defaultText = literalExpression "config.services.postgresql.package";
        description = "The PostgreSQL package to upgrade to.";
      };
      oldDataDir = mkOption {
        type = types.str;
        default = "/var/lib/postgresql/${cfg.oldPackage.psqlSchema}";
        defaultText = literalExpression ''"/var/lib/postgresql/''${oldPackage.psqlSchema}"'';
        description = "Data directory of the existing cluster.";
      };
      newDataDir = mkOption {
        type = types.str;
        default = pg.dataDir;
        defaultText = literalExpression "config.services.postgresql.dataDir";
        description = "Data directory of the upgraded cluster (must differ from oldDataDir).";
      };
      user = mkOption {
        type = types.str;
        default = "postgres";
        description = "Owner of both clusters and their superuser.";
      };
      initdbArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "initdb arguments for the new cluster; empty = the old cluster's encoding and locale.";
      };
      policy = mkOption {
        type = types.enum [ "required" "recommended" "optional" ];
        default = "required";
        description = "Migration policy (see boot.state.migrations.<id>.policy).";
      };
      backup = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Let bootstate snapshot the old data directory before the upgrade (costs its size on
          disk; pg_upgrade's copy mode leaves it unchanged anyway, so this guards against the
          unexpected only).
        '';
      };
      timeout = mkOption {
        type = types.ints.positive;
        default = 6 * 3600;
        description = "Seconds the upgrade (and the undo) may take.";
      };
    };
  };

  config = lib.mkMerge [
    (mkIf checkCfg.enable {
      assertions = [
        {
          assertion = engineHasChecks;
          message = "boot.state.postgresql.versionCheck: this bootstate's module has no boot.state.checks yet (the engine does not accept checks in the plan); keep versionCheck.enable off.";
        }
        {
          assertion = !(lib.hasInfix "\n" checkCfg.dataDir) && lib.hasPrefix "/" checkCfg.dataDir;
          message = "boot.state.postgresql.versionCheck.dataDir must be an absolute path without a newline.";
        }
      ];
    })
    # Defined only where the option exists: a definition of an undeclared option is an error
    # even under a false mkIf.
    (lib.optionalAttrs engineHasChecks {
      boot.state.checks = mkIf checkCfg.enable [ checkDeclaration ];
    })
    (mkIf (config.boot.state.enable && pg.enable && config.boot.state.postgresql.orderAfterBootstate) {
      systemd.services.postgresql = {
        after = [ "bootstate-post-activation.service" ];
        wants = [ "bootstate-post-activation.service" ];
      };
    })
    (mkIf cfg.enable {
      assertions = [
        {
          assertion = cfg.oldDataDir != cfg.newDataDir;
          message = "boot.state.postgresql.upgrade: oldDataDir and newDataDir must differ (pg_upgrade builds a new cluster next to the old one).";
        }
      ];
      boot.state.migrations.${cfg.id} = {
        description = "PostgreSQL ${oldVersion} -> ${newVersion}: pg_upgrade ${cfg.oldDataDir} -> ${cfg.newDataDir}";
        inherit (cfg) policy;
        backup = lib.optional cfg.backup cfg.oldDataDir;
        steps = [
          {
            id = "pg-upgrade";
            phase = "post-activation";
            command = [ exe "upgrade" ];
            check = [ exe "upgrade-done" ];
            inherit environment;
            inherit (cfg) timeout;
            idempotent = true;
            before = [ "postgresql.service" ];
            preview = "initdb ${cfg.newDataDir} and pg_upgrade from ${cfg.oldDataDir} (PostgreSQL ${oldVersion} -> ${newVersion}, copy mode: the old cluster is left unchanged)";
          }
        ];
        undo = [
          {
            id = "pg-downgrade";
            phase = "post-activation";
            command = [ exe "downgrade" ];
            check = [ exe "downgrade-done" ];
            inherit environment;
            inherit (cfg) timeout;
            idempotent = true;
            before = [ "postgresql.service" ];
            preview = "dump ${cfg.newDataDir} with the PostgreSQL ${newVersion} tools, restore into a fresh ${oldVersion} cluster in ${cfg.oldDataDir}; both previous directories are kept aside";
          }
        ];
      };
    })
  ];
}

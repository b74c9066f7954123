# boot.state.postgresql.upgrade: a PostgreSQL major upgrade as a bootstate migration.
#
# The steps are nixos/postgresql/bootstate-pg.sh (tested against real PostgreSQL by
# tests/postgresql): `upgrade` = initdb like the old cluster + pg_upgrade in copy mode (the old
# data directory stays as it was); undo = `downgrade`, which dumps the newer cluster with the
# newer tools and restores into a fresh older cluster (what was written after the upgrade
# survives a rollback); the old directories are moved aside, never deleted.
{
  config,
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

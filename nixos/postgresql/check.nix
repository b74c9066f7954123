# The PostgreSQL version check as an entry of the plan's `checks` (docs/DESIGN.md "Checks and
# resolutions"; docs/CHECKS.md "PostgreSQL"), in plan syntax.
#
# Builtins only, no nixpkgs: tests/postgresql/run-cross-major.sh evaluates this file with plain
# `nix-instantiate --eval` and runs exactly the argv it renders (as the `user` it names) against
# real PostgreSQL 14 and 15, so the declaration and the tested commands cannot drift apart.
# nixos/postgresql/module.nix calls it with store paths.
{
  checkExe, # bootstate-pg-check (nixos/postgresql/bootstate-pg-check.sh)
  resolveExe, # bootstate-pg-resolve (nixos/postgresql/bootstate-pg-resolve.sh)
  dataDir, # services.postgresql.dataDir
  serverBindir, # bin of the configured package with its extensions (finalPackage)
  otherBindirs ? [ ], # bins of other majors: the data's own server for dump-restore/pg-upgrade
  id ? "postgresql-version",
  user ? "postgres",
  link ? false, # pg-upgrade with --link (fast; the old cluster is unusable once 15 started)
  backupDataDir ? true, # pg-upgrade and dump-restore declare `backup = [ dataDir ]`
  backupsDir ? "/var/lib/bootstate/backups", # where restore-backup looks
  timeout ? 6 * 3600,
  port ? 50432,
}:
let
  where = [
    "--data-dir"
    dataDir
    "--server-bindir"
    serverBindir
  ];
  resolveArgs =
    where
    ++ builtins.concatMap (b: [
      "--bindir"
      b
    ]) otherBindirs
    ++ [
      "--port"
      (toString port)
    ];

  # A command step of a resolution. Every one is idempotent (a record beside the data
  # directory lets a re-run resume) and has a `check`, so an interruption is always safe.
  step =
    {
      stepId,
      action,
      doneAction ? "done",
      extra ? [ ],
      asUser ? true,
      preview,
    }:
    {
      id = stepId;
      phase = "post-activation";
      kind = "command";
      command = [
        resolveExe
        action
      ]
      ++ resolveArgs
      ++ extra;
      check = [
        resolveExe
        doneAction
      ]
      ++ resolveArgs;
      idempotent = true;
      reboot = false;
      inherit timeout preview;
    }
    // (if asUser then { inherit user; } else { });

  # Every resolution is undone the same way: dump-restore back to the major it started from,
  # so what was written in between survives (booting the other generation again).
  undo = [
    (step {
      stepId = "undo";
      action = "undo";
      doneAction = "undo-done";
      preview = "bring ${dataDir} back to the PostgreSQL major version it had before, by dump and restore (what was written since is kept)";
    })
  ];
  backup = if backupDataDir then [ dataDir ] else [ ];
in
{
  inherit id user;
  description = "The PostgreSQL data directory ${dataDir} is of the configured server's major version";
  phase = "post-activation";
  command = [ checkExe ] ++ where;
  timeout = 120;
  resolutions = [
    {
      id = "pg-upgrade";
      description = "pg_upgrade ${dataDir} to the configured server (${if link then "--link" else "copy mode"}), then vacuumdb --analyze-in-stages; the old directory is kept aside";
      inherit backup undo;
      steps = [
        (step {
          stepId = "pg-upgrade";
          action = "pg-upgrade";
          extra = if link then [ "--link" ] else [ ];
          preview = "pg_upgrade ${dataDir} into a fresh cluster of the configured server";
        })
      ];
    }
    {
      id = "dump-restore";
      description = "dump ${dataDir} with the newer version's tools and restore into a fresh cluster of the configured server; the old directory is kept aside";
      inherit backup undo;
      steps = [
        (step {
          stepId = "dump-restore";
          action = "dump-restore";
          preview = "dump ${dataDir} and restore it into a fresh cluster of the configured server";
        })
      ];
    }
    {
      id = "restore-backup";
      description = "put back the newest copy of ${dataDir} that bootstate backed up at the configured server's major version; the current directory is kept aside";
      # The directory as it is now is backed up too, so this choice can be undone.
      backup = [ dataDir ];
      inherit undo;
      steps = [
        (step {
          stepId = "restore-backup";
          action = "restore-backup";
          extra = [
            "--backups-dir"
            backupsDir
          ];
          # bootstate's backups are root's (mode 0700): this one step runs as root.
          asUser = false;
          preview = "copy ${dataDir} back from ${backupsDir}";
        })
      ];
    }
  ];
}

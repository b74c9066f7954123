# (c) PostgreSQL 15 -> 16 through boot.state.postgresql.upgrade, then a rollback: the
# migration is undone by dumping the 16 cluster and restoring it into a fresh 15 cluster.
{ pkgs, module }:
let
  common = import ./common.nix { inherit module; };
  base = {
    imports = [ common.node ];
    services.postgresql = {
      enable = true;
      package = pkgs.postgresql_15;
    };
  };
  update = {
    imports = [ base ];
    services.postgresql.package = pkgs.lib.mkForce pkgs.postgresql_16;
    boot.state.postgresql.upgrade = {
      enable = true;
      oldPackage = pkgs.postgresql_15;
    };
  };
  psql = "runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1";
in
common.upgradeTest {
  name = "bootstate-postgresql-upgrade";
  inherit base update;
  script = updated: ''
      machine.start()
      machine.wait_for_unit("postgresql.service")
      base = booted(machine)
      machine.succeed("${psql} -c 'CREATE DATABASE shop'")
      machine.succeed("${psql} -d shop -c \"CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g\"")

      with subtest("upgrade to 16 while booting the new generation"):
          boot_into(machine, "${updated}")
          machine.wait_for_unit("postgresql.service")
          assert machine.succeed("${psql} -c 'SHOW server_version_num'").strip().startswith("16")
          assert machine.succeed("${psql} -d shop -c 'SELECT count(*) FROM items'").strip() == "500"
          st = status(machine)
          mig = migration(st, "postgresql-upgrade-15-to-16")
          assert mig["state"] == "applied", mig
          assert step(mig, "pg-upgrade")["state"] == "done", mig
          assert st["attempt"]["state"] == "complete", st["attempt"]
          machine.succeed("${psql} -d shop -c \"INSERT INTO items VALUES (501, 'written on 16')\"")

      with subtest("rollback: the 16 cluster is dumped and restored into a fresh 15 cluster"):
          boot_into(machine, base)
          machine.wait_for_unit("postgresql.service")
          assert booted(machine) == base
          assert machine.succeed("${psql} -c 'SHOW server_version_num'").strip().startswith("15")
          assert machine.succeed("${psql} -d shop -c 'SELECT count(*) FROM items'").strip() == "501"
          assert machine.succeed("${psql} -d shop -c 'SELECT name FROM items WHERE id = 501'").strip() == "written on 16"
          mig = migration(status(machine), "postgresql-upgrade-15-to-16")
          assert mig["state"] == "undone", mig
          machine.succeed("ls -d /var/lib/postgresql/15.bootstate-before-downgrade-*")
  '';
}

#!/usr/bin/env python3
"""The seed's PostgreSQL scenarios through the bootstate binary (issue #15 item 5): the version
check and its resolutions exactly as nixos/postgresql/check.nix declares them (rendered by
nix-instantiate), in the plans of two generations whose servers are real PostgreSQL 15 (Debian)
and 14 (the npm registry's), over several boots of a --root tree (tests/integration/harness.py).

  downgrade 15 -> 14 with dump-restore: preview predicts an error item with its resolutions and
  blocks; the boot without a choice fails and falls back, the data untouched; after `choose`
  (the command status prints) the boot migrates the data as `postgres`; rows are checked with
  the 14 server; booting 15 again undoes it, keeping what was written on 14.

  restore-backup: 14 data, `choose pg-upgrade` for the 15 generation (bootstate backs the 14
  directory up first); the operator keeps the upgrade when going back (`decline` of its undo),
  so the 14 generation's check finds 15 data; `choose restore-backup` puts bootstate's backup
  of the 14 directory back; booting 15 again undoes that.

  test_through_bootstate.py NPM14_BINDIR     (BOOTSTATE: the binary; exit 77: cannot run here)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import Machine  # noqa: E402

# Under CI every prerequisite is installed: a missing one fails there instead of skipping.
SKIP = 1 if os.environ.get("CI") else 77
PG15 = os.environ.get("PG15_BINDIR", "/usr/lib/postgresql/15/bin")
SCRIPTS = os.path.join(REPO, "nixos", "postgresql")
DATA = "/var/lib/postgresql/data"  # as the plan names it; under the tree's root on disk
CHECK = "postgresql-version"
failures = []


def expect(condition, what):
    print(("ok - " if condition else "not ok - ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


class Cluster:
    """The tree's data directory, run by a test server of either major as `postgres`."""

    def __init__(self, machine, work):
        self.path = machine.path(DATA)
        self.sock = os.path.join(work, "sock")
        self.home = os.path.join(work, "home")
        for directory in (os.path.dirname(self.path), self.sock, self.home):
            os.makedirs(directory, exist_ok=True)
            shutil.chown(directory, "postgres", "postgres")
        self.port = 40000 + os.getpid() % 20000

    def as_postgres(self, *argv, check=True):
        return subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                               "--", "env", "HOME=" + self.home] + list(argv),
                              capture_output=True, text=True, check=check, timeout=300)

    def start(self, bindir):
        options = ("-c config_file=/dev/null -c listen_addresses= "
                   "-c unix_socket_directories=%s -p %d" % (self.sock, self.port))
        self.as_postgres(bindir + "/pg_ctl", "-D", self.path, "-l", self.home + "/server.log",
                         "-w", "-o", options, "start")

    def stop(self, bindir):
        self.as_postgres(bindir + "/pg_ctl", "-D", self.path, "-m", "fast", "-w", "stop")

    def sql(self, database, text):
        return self.as_postgres(PG15 + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                "-h", self.sock, "-p", str(self.port), "-U", "postgres",
                                "-d", database, "-c", text).stdout.strip()

    def create(self, bindir):
        self.as_postgres(bindir + "/initdb", "-D", self.path, "-U", "postgres",
                         "--encoding=UTF8", "--locale=C")
        self.start(bindir)
        self.sql("postgres", "CREATE DATABASE shop")
        self.sql("shop", "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); "
                         "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g")
        self.stop(bindir)

    def version(self):
        with open(os.path.join(self.path, "PG_VERSION")) as file:
            return file.read().strip()

    def rows(self, bindir, insert=None):
        """The row count as the server of `bindir` reads it (after inserting row `insert`)."""
        self.start(bindir)
        try:
            if insert is not None:
                self.sql("shop", "INSERT INTO items VALUES (%d, 'written later')" % insert)
            return int(self.sql("shop", "SELECT count(*) FROM items"))
        finally:
            self.stop(bindir)


def render(server_bindir, other_bindirs, port):
    """The check entry of the plan, as nixos/postgresql/check.nix declares it."""
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", os.path.join(SCRIPTS, "check.nix"),
         "--argstr", "checkExe", os.path.join(SCRIPTS, "bootstate-pg-check.sh"),
         "--argstr", "resolveExe", os.path.join(SCRIPTS, "bootstate-pg-resolve.sh"),
         "--argstr", "dataDir", DATA, "--argstr", "serverBindir", server_bindir,
         "--arg", "otherBindirs", "[ %s ]" % " ".join('"%s"' % b for b in other_bindirs),
         "--argstr", "backupsDir", "/var/lib/bootstate/backups", "--arg", "port", str(port)],
        capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout)


def item(document, item_id):
    return next((i for i in document["items"] if i["id"] == item_id), None)


def boot(machine, name):
    machine.boot_into(name)
    machine.reboot()
    return machine.boot()


def printed_command(text, prefix):
    """The command `prefix …` as bootstate printed it (the line, or between backquotes)."""
    for line in text.splitlines():
        line = line.strip().strip("`")
        if line.startswith(prefix):
            return line.split()[1:]
    raise AssertionError("no `%s` in:\n%s" % (prefix, text))


def setup(work, pg14):
    machine = Machine()
    os.chmod(machine.root, 0o755)  # postgres walks to the data directory and its work dirs
    cluster = Cluster(machine, work)
    bindirs = [pg14, PG15]
    machine.write_plan("g15", [], checks=[render(PG15, bindirs, cluster.port + 1)])
    machine.write_plan("g14", [], checks=[render(pg14, bindirs, cluster.port + 1)])
    return machine, cluster


def downgrade_with_dump_restore(work, pg14):
    print("# downgrade 15 -> 14 with dump-restore", flush=True)
    machine, cluster = setup(work, pg14)
    try:
        cluster.create(PG15)
        expect(boot(machine, "g15") == 0, "the 15 generation boots: its check finds 15 data")
        preview = machine.bootstate("--json", "preview", machine.toplevel("g14"))
        document = json.loads(preview.stdout)
        found = item(document, "postgresql-downgrade-15-to-14")
        expect(preview.returncode == 1 and document["blocked"], "preview of 14 is blocked (exit 1)")
        expect(found is not None and found["severity"] == "error" and
               [r["id"] for r in found["resolutions"]] == ["dump-restore", "restore-backup"],
               "preview lists the error item with dump-restore and restore-backup")

        expect(boot(machine, "g14") == 1, "the 14 generation's boot without a choice fails")
        expect(cluster.version() == "15", "the data is untouched by the failed boot")
        expect(boot(machine, "g15") == 0, "the fallback to 15 boots")
        status = machine.bootstate("status").stdout
        choose = printed_command(status, "bootstate choose postgresql-downgrade-15-to-14 dump-restore")
        chosen = machine.bootstate(*choose)
        expect(chosen.returncode == 0, "choose, as status prints it: " + chosen.stderr.strip())

        expect(boot(machine, "g14") == 0, "the 14 generation boots and applies dump-restore")
        expect(cluster.version() == "14", "the data directory is PostgreSQL 14")
        expect(machine.migration(CHECK + ".dump-restore")["state"] == "applied",
               "migration %s.dump-restore is applied" % CHECK)
        expect(cluster.rows(pg14, insert=1001) == 1001, "PostgreSQL 14 reads the 1000 rows (+1 written)")

        expect(boot(machine, "g15") == 0, "booting 15 again undoes the resolution")
        expect(cluster.version() == "15", "the data directory is PostgreSQL 15 again")
        expect(machine.migration(CHECK + ".dump-restore")["state"] == "undone", "the resolution is undone")
        expect(cluster.rows(PG15) == 1001, "PostgreSQL 15 reads them, the row written on 14 too")
    finally:
        machine.cleanup()


def downgrade_with_restore_backup(work, pg14):
    print("# upgrade 14 -> 15 with pg-upgrade, then back with restore-backup", flush=True)
    machine, cluster = setup(work, pg14)
    try:
        cluster.create(pg14)
        expect(boot(machine, "g14") == 0, "the 14 generation boots: its check finds 14 data")
        g15 = machine.toplevel("g15")
        chosen = machine.bootstate("choose", "--plan", g15, "postgresql-upgrade-14-to-15", "pg-upgrade")
        expect(chosen.returncode == 0, "pg-upgrade chosen for 15 before booting it: " + chosen.stderr.strip())
        expect(boot(machine, "g15") == 0, "the 15 generation boots and applies pg-upgrade")
        expect(cluster.version() == "15", "the data directory is PostgreSQL 15")
        expect(cluster.rows(PG15, insert=1001) == 1001, "PostgreSQL 15 reads the rows (+1 written)")

        g14 = machine.toplevel("g14")
        declined = machine.bootstate("decline", "--plan", g14, CHECK + ".pg-upgrade")
        expect(declined.returncode == 0, "the upgrade is kept when going back: " + declined.stderr.strip())
        preview = machine.bootstate("preview", g14)
        expect(preview.returncode == 1, "preview of 14 is blocked by the 15 data")
        choose = printed_command(preview.stdout, "bootstate choose --plan %s postgresql-downgrade-15-to-14 restore-backup" % g14)
        expect(machine.bootstate(*choose).returncode == 0, "restore-backup chosen, as preview prints it")
        expect(boot(machine, "g14") == 0, "the 14 generation boots and restores the backup")
        expect(cluster.version() == "14", "the data directory is PostgreSQL 14 from bootstate's backup")
        expect(cluster.rows(pg14) == 1000, "PostgreSQL 14 reads the rows as they were before the upgrade")
        kept = [n for n in os.listdir(os.path.dirname(cluster.path)) if n.startswith("data.bootstate-pg15-")]
        expect(kept != [], "the 15 directory is kept aside, not deleted: %s" % kept)

        expect(boot(machine, "g15") == 0, "booting 15 again undoes restore-backup")
        expect(cluster.version() == "15", "the data directory is PostgreSQL 15 again")
        expect(cluster.rows(PG15) == 1000, "PostgreSQL 15 reads the rows")
    finally:
        machine.cleanup()


def main():
    npm14 = sys.argv[1] if len(sys.argv) > 1 else ""
    if not os.access(os.path.join(npm14, "postgres"), os.X_OK):
        print("no PostgreSQL 14 in %r (tests/postgresql/fetch-pg.sh)" % npm14)
        return 1
    if not os.access(PG15 + "/pg_upgrade", os.X_OK):
        print("SKIP: PostgreSQL 15 is not installed (%s)" % PG15)
        return SKIP
    if os.geteuid() != 0 or subprocess.run(["id", "postgres"], capture_output=True).returncode:
        print("SKIP: needs root and a postgres user")
        return SKIP
    if shutil.which("nix-instantiate") is None:
        print("SKIP: nix-instantiate is not installed (nix-bin)")
        return SKIP
    work = tempfile.mkdtemp(prefix="bootstate-pg-boot.")
    os.chmod(work, 0o755)
    try:
        pg14 = os.path.join(work, "pg14")
        subprocess.run([os.path.join(HERE, "pg14-bindir.sh"), npm14, PG15, pg14], check=True)
        for scenario in (downgrade_with_dump_restore, downgrade_with_restore_backup):
            try:
                scenario(work, pg14)
            except (subprocess.CalledProcessError, AssertionError, KeyError) as error:
                detail = getattr(error, "stderr", "") or ""
                expect(False, "%s: %s %s" % (scenario.__name__, error, detail))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

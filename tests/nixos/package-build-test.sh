#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || ko`: ok only echoes
# Configures, builds and installs bootstate the way nixos/package.nix builds it in nixpkgs, and
# fails if anything lands outside the prefix:
#   - the flags of nixpkgs' cmake setup hook (pkgs/by-name/cm/cmake/setup-hook.sh: absolute
#     CMAKE_INSTALL_*DIR under $out, Release, BUILD_TESTING=OFF without doCheck, -GNinja) and
#     the package's cmakeFlags (BOOTSTATE_WERROR/TESTS/VM_TESTS off, as with doCheck = false);
#   - a PATH of symlinks to only the tools a build needs (cmake, ninja, the compilers,
#     binutils, pkg-config): no python3;
#   - a prefix like $out (/nix/store/<hash>-bootstate-0.1.0), installed with DESTDIR.
# Also: no CMakeLists.txt names /usr or /opt (the setup hook rewrites those to /var/empty), no
# Python3 or doctest looked up with the tests off, no -Werror, no test registered.
#   package-build-test.sh SOURCE_DIR WORK_DIR
# WORK_DIR keeps the build tree between runs, so a second run only rebuilds what changed.
set -euo pipefail
src=$(cd "${1:?usage: package-build-test.sh SOURCE_DIR WORK_DIR}" && pwd)
work=${2:?usage: package-build-test.sh SOURCE_DIR WORK_DIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
failures=0
ok() { echo "ok - $*"; }
ko() { echo "not ok - $*"; failures=$((failures + 1)); }

# --- the tools, and nothing else, on PATH --------------------------------------------------
tools=$work/tools
rm -rf "$tools"
mkdir -p "$tools"
for tool in cmake ctest ninja gcc g++ cc c++ as ld ar ranlib strip pkg-config; do
  path=$(command -v "$tool") || { echo "not ok - $tool is not installed"; exit 1; }
  ln -s "$path" "$tools/$tool"
done
if env PATH="$tools" sh -c 'command -v python3 || command -v python' >/dev/null 2>&1; then
  ko "python is reachable on the restricted PATH"
else
  ok "no python on PATH ($tools)"
fi

# --- sources as the setup hook's fixCmakeFiles would leave them -----------------------------
# Comments are rewritten too, harmlessly: only code lines count.
if grep -rnE --include=CMakeLists.txt --include='*.cmake' --include='*.cmake.in' \
  '/(usr|opt)([ /"]|$)' "$src" --exclude-dir='build*' --exclude-dir=.git |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' >"$work/usr-refs"; then
  ko "CMake files name /usr or /opt (nixpkgs rewrites them to /var/empty): $(tr '\n' ' ' <"$work/usr-refs")"
else
  ok "no CMake file names /usr or /opt"
fi

# --- configure as cmakeConfigurePhase does ---------------------------------------------------
out=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-bootstate-0.1.0
build=$work/build
rm -f "$build/CMakeCache.txt"
flags=(
  -GNinja
  "-DCMAKE_CXX_COMPILER=g++" "-DCMAKE_C_COMPILER=gcc"
  "-DCMAKE_AR=$tools/ar" "-DCMAKE_RANLIB=$tools/ranlib" "-DCMAKE_STRIP=$tools/strip"
  -DCMAKE_FIND_FRAMEWORK=LAST -DCMAKE_POLICY_DEFAULT_CMP0025=NEW
  "-DCMAKE_INSTALL_NAME_DIR=$out/lib"
  "-DCMAKE_INSTALL_BINDIR=$out/bin" "-DCMAKE_INSTALL_SBINDIR=$out/sbin"
  "-DCMAKE_INSTALL_INCLUDEDIR=$out/include" "-DCMAKE_INSTALL_MANDIR=$out/share/man"
  "-DCMAKE_INSTALL_INFODIR=$out/share/info" "-DCMAKE_INSTALL_LIBDIR=$out/lib"
  "-DCMAKE_INSTALL_LIBEXECDIR=$out/libexec" "-DCMAKE_INSTALL_LOCALEDIR=$out/share/locale"
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  "-DCMAKE_INSTALL_PREFIX=$out" -DBUILD_TESTING=OFF
  "-DCMAKE_INSTALL_DOCDIR=$out/share/doc/bootstate"
  # nixos/package.nix cmakeFlags with doCheck = false (lib.cmakeBool)
  -DBOOTSTATE_WERROR:BOOL=FALSE -DBOOTSTATE_TESTS:BOOL=FALSE -DBOOTSTATE_VM_TESTS:BOOL=FALSE
)
# Speed only (nixpkgs has no launcher): reuse compiled objects across runs and worktrees.
if ccache=$(command -v ccache); then
  flags+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$ccache" "-DCMAKE_C_COMPILER_LAUNCHER=$ccache")
fi
if ! env -i HOME="$work" PATH="$tools" ${CCACHE_DIR:+CCACHE_DIR=$CCACHE_DIR} \
  ${CCACHE_BASEDIR:+CCACHE_BASEDIR=$CCACHE_BASEDIR} \
  cmake -S "$src" -B "$build" "${flags[@]}" >"$work/configure.log" 2>&1; then
  cat "$work/configure.log"
  echo "not ok - configure failed with the package's flags and no python3"; exit 1
fi
ok "configured with the package's flags, tests off, no python3"
grep -qiE '^(Python3_EXECUTABLE|_Python3_EXECUTABLE|doctest_DIR)[^=]*=/' "$build/CMakeCache.txt" &&
  ko "configure looked up Python3 or doctest with the tests off: $(grep -iE '^(_?Python3_EXECUTABLE|doctest_DIR)' "$build/CMakeCache.txt" | tr '\n' ' ')" ||
  ok "no Python3 or doctest looked up with BOOTSTATE_TESTS=OFF"
grep -q -- '-Werror' "$build/compile_commands.json" && ko "-Werror is on with BOOTSTATE_WERROR=OFF" ||
  ok "no -Werror"
tests=$(cd "$build" && env PATH="$tools" ctest -N | sed -n 's/^Total Tests: //p')
[ "$tests" = 0 ] && ok "no test registered without doCheck" || ko "$tests test(s) registered with the tests off"

# --- build and install (DESTDIR) ---------------------------------------------------------------
if ! env -i HOME="$work" PATH="$tools" ${CCACHE_DIR:+CCACHE_DIR=$CCACHE_DIR} \
  ${CCACHE_BASEDIR:+CCACHE_BASEDIR=$CCACHE_BASEDIR} \
  cmake --build "$build" >"$work/build.log" 2>&1; then
  tail -50 "$work/build.log"
  echo "not ok - build failed"; exit 1
fi
ok "built"
dest=$work/dest
rm -rf "$dest"
if ! env -i HOME="$work" PATH="$tools" DESTDIR="$dest" cmake --install "$build" >"$work/install.log" 2>&1; then
  cat "$work/install.log"
  echo "not ok - install failed"; exit 1
fi
outside=$(cd "$dest" && find . \( -type f -o -type l \) ! -path ".$out/*")
[ -z "$outside" ] && ok "every installed file is under the prefix $out" ||
  ko "installed outside the prefix: $(tr '\n' ' ' <<<"$outside")"
for file in bin/bootstate libexec/bootstate/bootstate-fwupd lib/systemd/system/bootstate-initrd-pre-mount.service \
  lib/systemd/system/bootstate-pre-switch-root.service lib/systemd/system/bootstate-post-activation.service; do
  [ -e "$dest$out/$file" ] && ok "installed \$out/$file" || ko "missing \$out/$file"
done
grep -q "^ExecStart=$out/bin/bootstate run --phase post-activation" \
  "$dest$out/lib/systemd/system/bootstate-post-activation.service" &&
  ok "the units run \$out/bin/bootstate" || ko "the post-activation unit does not run \$out/bin/bootstate"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }

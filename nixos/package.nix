# The bootstate package, built as nixpkgs builds a CMake package: the cmake setup hook's
# configure (CMAKE_INSTALL_PREFIX=$out), no -Werror, the ctest suite only with doCheck.
# tests/nixos/package-build-test.sh configures, builds and installs with the same flags and no
# python3 on PATH, and fails if a file lands outside the prefix.
{
  lib,
  stdenv,
  cmake,
  ninja,
  pkg-config,
  scdoc,
  systemd,
  util-linux,
  rapidjson,
  fmt,
  doctest,
  fwupd,
  glib,
  jq,
  python3,
}:
let
  fs = lib.fileset;
  root = ../.;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "bootstate";
  version = "0.1.0";

  # What the build and its tests read, and nothing else: no build directories, docs, demo,
  # flake or Nix expressions (editing the module does not rebuild the package). The shell
  # helpers under nixos/ stay: the `nixos` ctest label runs them.
  src = fs.toSource {
    inherit root;
    fileset = fs.unions [
      ../CMakeLists.txt
      ../core
      ../bootloader
      ../initrd
      ../stage2
      ../firmware
      ../cli
      ../units
      ../man
      ../completions
      ../tests
      ../bench
      (fs.fileFilter (file: !file.hasExt "nix") ../nixos)
    ];
  };

  nativeBuildInputs = [
    cmake
    ninja
    pkg-config
    scdoc # renders bootstate(8)
  ];
  buildInputs = [
    systemd # libsystemd (headers; loaded on first use)
    util-linux # libfdisk, libblkid (headers; loaded on first use)
    rapidjson
    fmt
    fwupd
    glib
  ];
  # Only when the tests are built (stdenv adds these to the build inputs when doCheck).
  nativeCheckInputs = [
    doctest
    jq
    python3 # tests/integration drive the real binary from Python
  ];
  checkInputs = [ doctest ];

  cmakeFlags = [
    # Warnings are errors in the project's CI (scripts/test.sh), not for a packager whose
    # compiler is newer than the one the code was last built with.
    (lib.cmakeBool "BOOTSTATE_WERROR" false)
    (lib.cmakeBool "BOOTSTATE_TESTS" finalAttrs.finalPackage.doCheck)
    (lib.cmakeBool "BOOTSTATE_VM_TESTS" false)
  ];

  doCheck = stdenv.buildPlatform.canExecute stdenv.hostPlatform;
  # Tests that need what the build sandbox lacks (PostgreSQL, KVM, a D-Bus daemon) skip
  # themselves with exit 77; the NixOS VM tests (checks.*) cover those paths. Not here either:
  # nix_package_build (a second build of the package, what this derivation is) and
  # nix_dlopen_notes (resolves sonames through the host's ldconfig cache; the VM tests and
  # make-initrd-ng itself check the notes under Nix).
  checkPhase = ''
    runHook preCheck
    ctest --output-on-failure --label-exclude 'postgresql|vm' \
      --exclude-regex '^nix_(package_build|dlopen_notes)$'
    runHook postCheck
  '';

  # libsystemd, libfdisk and libblkid are loaded on first use (dlopen, docs/PERFORMANCE.md), so
  # they are not DT_NEEDED: put their directories on the RUNPATH, which dlopen searches, which
  # keeps them in the closure, and where make-initrd-ng looks up the sonames the binary's
  # .note.dlopen notes declare (docs/NIXOS.md). After fixup, whose patchelf --shrink-rpath
  # would drop them again.
  postFixup = ''
    patchelf --add-rpath ${
      lib.makeLibraryPath [
        systemd
        util-linux
      ]
    } $out/bin/bootstate
  '';

  passthru = {
    # For a nixpkgs whose initrd builder does not read .note.dlopen: the module then puts these
    # into boot.initrd.systemd.storePaths itself.
    dlopenLibraries = [
      "${lib.getLib util-linux}/lib/libfdisk.so.1"
      "${lib.getLib util-linux}/lib/libblkid.so.1"
      "${lib.getLib systemd}/lib/libsystemd.so.0"
    ];
  };

  meta = {
    description = "Persistent on-disk state machine advanced at NixOS boot phases";
    mainProgram = "bootstate";
    platforms = lib.platforms.linux;
    # No `license`: the project does not declare one yet (no LICENSE file, nothing in the
    # README or the flake). Setting one here would be inventing it.
  };
})

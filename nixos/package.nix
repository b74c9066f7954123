# The bootstate package: the project's CMake build with its ctest suite as the check phase.
{
  lib,
  stdenv,
  src,
  cmake,
  ninja,
  pkg-config,
  scdoc,
  systemd,
  util-linux,
  cereal,
  rapidjson,
  spdlog,
  fmt,
  doctest,
  fwupd,
  glib,
  jq,
}:
stdenv.mkDerivation {
  pname = "bootstate";
  version = "0.1.0";
  inherit src;

  nativeBuildInputs = [ cmake ninja pkg-config scdoc ]; # scdoc renders bootstate(8)
  buildInputs = [
    systemd # libsystemd
    util-linux # libfdisk, libblkid
    cereal
    rapidjson
    spdlog
    fmt
    fwupd
    glib
  ];
  nativeCheckInputs = [ doctest jq ];
  checkInputs = [ doctest ];

  cmakeFlags = [
    (lib.cmakeBool "BOOTSTATE_WERROR" true)
    (lib.cmakeBool "BOOTSTATE_TESTS" true)
  ];
  # Tests that need what the build sandbox lacks (PostgreSQL, KVM, a D-Bus daemon) skip
  # themselves with exit 77; the NixOS VM tests (checks.*) cover those paths.
  # libsystemd, libfdisk and libblkid are loaded on first use (dlopen, docs/PERFORMANCE.md), so
  # they are not DT_NEEDED: put their store paths on the RUNPATH, which dlopen searches, and
  # which also keeps them in the closure (and so in the initrd, via storePaths).
  postFixup = ''
    patchelf --add-rpath ${lib.makeLibraryPath [ systemd util-linux ]} $out/bin/bootstate
  '';
  doCheck = true;
  checkPhase = ''
    runHook preCheck
    ctest --output-on-failure --label-exclude 'postgresql|vm'
    runHook postCheck
  '';

  meta = {
    description = "Persistent on-disk state machine advanced at NixOS boot phases";
    mainProgram = "bootstate";
    platforms = lib.platforms.linux;
  };
}

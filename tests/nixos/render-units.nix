# Renders the unit files nixos/module.nix makes NixOS install, from the option values the module
# evaluates to (tests/nixos/eval-module.nix `vm`, real nixpkgs lib, eval-stubs.nix for NixOS).
# The text follows nixpkgs' nixos/lib/systemd-lib.nix (read at commit 013635633ffe): the
# `unitConfig` module (Requires/Wants/After/Before/Conflicts as `toString` of the lists,
# Description, X-Restart-Triggers as a writeText store path), `attrsToSection` (keys in
# attribute-name order, a list gives one line per element, booleans as true/false),
# `commonUnitText`, `serviceToUnit` and `mountToUnit`, and `generateUnits` for the
# wantedBy/requiredBy links (`<target>.wants/<unit>`, `<target>.requires/<unit>`).
# Not rendered: the `Environment=` lines serviceToUnit adds from `environment` and
# `systemd.globalEnvironment` (PATH of coreutils, findutils, gnugrep, gnused, systemd;
# LOCALE_ARCHIVE, TZDIR) — eval-stubs.nix does not declare them; bootstate sets none.
#   nix-instantiate --eval --strict --json --arg nixpkgsLib LIB tests/nixos/render-units.nix
# gives { units = { "<file>" = "<text>"; }; links = [ "<dir>/<unit>" ... ]; }.
{ nixpkgsLib }:
let
  lib = import nixpkgsLib;
  inherit (lib)
    concatStrings
    concatLists
    mapAttrsToList
    isList
    optionalAttrs
    optionalString
    concatStringsSep
    ;
  vm = (import ./eval-module.nix { inherit nixpkgsLib; }).vm;

  # systemd-lib.nix: toOption, attrsToSection.
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  attrsToSection =
    as:
    concatStrings (
      concatLists (
        mapAttrsToList (
          name: value:
          map (x: ''
            ${name}=${toOption x}
          '') (if isList value then value else [ value ])
        ) as
      )
    );

  # systemd-lib.nix `unitConfig`: the dependency lists and the description become [Unit] keys.
  # X-Restart-Triggers is `pkgs.writeText "X-Restart-Triggers-${name}" (toString triggers)`; a
  # store path whose hash stands in for the one Nix would compute from that text.
  restartTriggersPath =
    name: triggers:
    let
      text = toString triggers;
    in
    "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" "${name}:${text}")}-X-Restart-Triggers-${name}";
  unitConfigOf =
    name: u:
    u.unitConfig
    // optionalAttrs (u.requires != [ ]) { Requires = toString u.requires; }
    // optionalAttrs (u.wants != [ ]) { Wants = toString u.wants; }
    // optionalAttrs (u.after != [ ]) { After = toString u.after; }
    // optionalAttrs (u.before != [ ]) { Before = toString u.before; }
    // optionalAttrs (u.conflicts != [ ]) { Conflicts = toString u.conflicts; }
    // optionalAttrs ((u.restartTriggers or [ ]) != [ ]) {
      X-Restart-Triggers = restartTriggersPath name u.restartTriggers;
    }
    // optionalAttrs (u.description != "") { Description = u.description; };

  # systemd-lib.nix commonUnitText, serviceToUnit (without Environment=), mountToUnit.
  commonUnitText =
    unitConfig: wantedBy: lines:
    ''
      [Unit]
      ${attrsToSection unitConfig}
    ''
    + lines
    + optionalString (wantedBy != [ ]) ''

      [Install]
      WantedBy=${concatStringsSep " " wantedBy}
    '';
  serviceText =
    name: u:
    commonUnitText (unitConfigOf name u) u.wantedBy (
      ''
        [Service]
      ''
      + attrsToSection u.serviceConfig
    );
  # nixpkgs names a mount unit by utils.escapeSystemdPath of `where`; bootstate's is /bootstate.
  mountName = m: "${lib.removePrefix "-" (builtins.replaceStrings [ "/" ] [ "-" ] m.where)}.mount";
  mountText =
    m:
    commonUnitText (unitConfigOf (mountName m) m) m.wantedBy ''
      [Mount]
      ${attrsToSection (
        {
          What = m.what;
          Where = m.where;
        }
        // optionalAttrs (m.type != "") { Type = m.type; }
        // optionalAttrs (m.options != "") { Options = m.options; }
      )}
    '';

  # generateUnits: a link per wantedBy/requiredBy target, initrd and stage 2 apart.
  linksOf =
    prefix: file: u:
    map (t: "${prefix}/${t}.wants/${file}") u.wantedBy
    ++ map (t: "${prefix}/${t}.requires/${file}") u.requiredBy;
  initrdServices = lib.mapAttrs' (n: u: lib.nameValuePair "${n}.service" u) vm.initrdServices;
  stage2Services = lib.mapAttrs' (n: u: lib.nameValuePair "${n}.service" u) vm.services;
in
assert vm.failedAssertions == [ ];
{
  units =
    lib.mapAttrs' (f: u: lib.nameValuePair "initrd/${f}" (serviceText (lib.removeSuffix ".service" f) u)) initrdServices
    // lib.listToAttrs (map (m: lib.nameValuePair "initrd/${mountName m}" (mountText m)) vm.initrdMounts)
    // lib.mapAttrs' (f: u: lib.nameValuePair "system/${f}" (serviceText (lib.removeSuffix ".service" f) u)) stage2Services;
  links =
    concatLists (mapAttrsToList (linksOf "initrd") initrdServices)
    ++ concatLists (map (m: linksOf "initrd" (mountName m) m) vm.initrdMounts)
    ++ concatLists (mapAttrsToList (linksOf "system") stage2Services);
}

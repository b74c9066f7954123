# Stand-ins for what nixos/module.nix needs from nixpkgs and NixOS, so that
# tests/nixos/eval-module.nix can evaluate it with nixpkgs' real module system (lib.evalModules)
# on a machine without nixpkgs. Developer tool, see docs/NIXOS.md "Verified how".
#
#   pkgs     fake derivations: attribute sets with type = "derivation" and a fake outPath
#            (nothing is built); writeText keeps its text in `.text` so the plan can be read.
#   utils    escapeSystemdPath, simplified (no \x escapes but "-").
#   options  the NixOS options the bootstate modules read or set. Types follow nixpkgs where
#            they are simple (read there: boot.initrd.systemd.storePaths/contents from
#            nixos/lib/systemd-types.nix, the rest as NixOS declares them); systemd unit
#            submodules are reduced to the options bootstate uses, with nixpkgs' unit option
#            merge (lists concatenated, scalars must agree).
{ lib, withBootCounting ? true }:
let
  inherit (lib) mkOption types;

  fakeHash = name: builtins.substring 0 32 (builtins.hashString "sha256" name);
  drv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${fakeHash name}-${name}";
      drvPath = "/nix/store/${fakeHash "drv-${name}"}-${name}.drv";
      outputs = [ "out" ];
      outputName = "out";
    }
    // extra;
  pkg = pname: version: extra: drv "${pname}-${version}" ({ inherit pname version; } // extra);

  pkgs = {
    inherit lib;
    writeText = name: text: drv name { inherit text; };
    writeShellScript = name: text: drv name { inherit text; };
    writeShellApplication =
      {
        name,
        text,
        runtimeInputs ? [ ],
        ...
      }:
      drv name {
        inherit text runtimeInputs;
        meta.mainProgram = name;
      };
    bootstate = pkg "bootstate" "0.1.0" { meta.mainProgram = "bootstate"; };
    coreutils = pkg "coreutils" "9.5" { };
    gnugrep = pkg "gnugrep" "3.11" { };
    gnused = pkg "gnused" "4.9" { };
    findutils = pkg "findutils" "4.10.0" { };
    util-linux = pkg "util-linux" "2.40" { };
    jq = pkg "jq" "1.7.1" { };
    gawk = pkg "gawk" "5.3.1" { };
    gzip = pkg "gzip" "1.13" { };
    e2fsprogs = pkg "e2fsprogs" "1.47.1" { };
    fwupd = pkg "fwupd" "2.0.1" { installedTests = drv "fwupd-2.0.1-installedTests" { }; };
    postgresql_15 = pkg "postgresql" "15.10" { psqlSchema = "15"; };
    postgresql_16 = pkg "postgresql" "16.6" { psqlSchema = "16"; };
  };

  utils.escapeSystemdPath =
    s: builtins.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" (builtins.replaceStrings [ "-" ] [ "\\x2d" ] s));

  # nixpkgs' unit option type (nixos/lib/systemd-lib.nix `unitOption`): a list in any definition
  # makes the merged value a concatenated list, otherwise all definitions must be equal.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: lib.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  unitNames = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  unitCommon = {
    enable = mkOption {
      type = types.bool;
      default = true;
    };
    description = mkOption {
      type = types.singleLineStr;
      default = "";
    };
    wantedBy = unitNames;
    requiredBy = unitNames;
    upheldBy = unitNames;
    wants = unitNames;
    requires = unitNames;
    upholds = unitNames;
    after = unitNames;
    before = unitNames;
    bindsTo = unitNames;
    partOf = unitNames;
    conflicts = unitNames;
    requisite = unitNames;
    onFailure = unitNames;
    onSuccess = unitNames;
    unitConfig = mkOption {
      type = types.attrsOf unitOption;
      default = { };
    };
    restartTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    reloadTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
  };
  serviceModule = {
    options = unitCommon // {
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
      };
      path = mkOption {
        type = types.listOf (types.oneOf [ types.package types.str ]);
        default = [ ];
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
    };
  };
  mountModule = {
    options = unitCommon // {
      what = mkOption {
        type = types.str;
      };
      where = mkOption {
        type = types.str;
      };
      type = mkOption {
        type = types.str;
        default = "";
      };
      options = mkOption {
        type = types.commas;
        default = "";
      };
      mountConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };
  # nixos/lib/systemd-types.nix: initrdStorePathModule, initrdStorePath, initrdContents.
  initrdStorePathModule =
    { config, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        target = mkOption {
          type = types.nullOr types.path;
          default = null;
        };
        source = mkOption {
          type = types.path;
        };
        dlopen = mkOption {
          type = types.attrsOf types.anything;
          default = { };
        };
      };
    };
  initrdStorePath = types.listOf (
    types.coercedTo (types.oneOf [
      types.singleLineStr
      types.package
    ]) (source: { inherit source; }) (types.submodule initrdStorePathModule)
  );
  initrdContents = types.attrsOf (
    types.submodule (
      {
        config,
        options,
        name,
        ...
      }:
      {
        imports = [ initrdStorePathModule ];
        options.text = mkOption {
          default = null;
          type = types.nullOr types.lines;
        };
        config = {
          target = lib.mkDefault name;
          source = lib.mkIf (config.text != null) (
            lib.mkDerivedConfig options.text (pkgs.writeText ("initrd-" + baseNameOf name))
          );
        };
      }
    )
  );

  fileSystemModule = {
    options = {
      device = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
      label = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
      fsType = mkOption {
        type = types.str;
        default = "auto";
      };
      options = mkOption {
        type = types.nonEmptyListOf types.str;
        default = [ "defaults" ];
      };
    };
  };

  freeform = mkOption {
    type = types.attrsOf types.anything;
    default = { };
  };
in
{
  inherit pkgs utils drv;

  module = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        internal = true;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        internal = true;
        default = [ ];
      };

      boot.initrd.systemd = {
        enable = lib.mkEnableOption "systemd in the initrd";
        contents = mkOption {
          type = initrdContents;
          default = { };
        };
        storePaths = mkOption {
          type = initrdStorePath;
          default = [ ];
        };
        services = mkOption {
          type = types.attrsOf (types.submodule serviceModule);
          default = { };
        };
        mounts = mkOption {
          type = types.listOf (types.submodule mountModule);
          default = [ ];
        };
      };
      boot.initrd.availableKernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      boot.loader.systemd-boot =
        {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
        }
        // lib.optionalAttrs withBootCounting {
          bootCounting = {
            enable = mkOption {
              type = types.bool;
              default = false;
            };
            tries = mkOption {
              type = types.ints.positive;
              default = 3;
            };
          };
        };
      boot.loader.efi = {
        efiSysMountPoint = mkOption {
          type = types.str;
          default = "/boot";
        };
        canTouchEfiVariables = mkOption {
          type = types.bool;
          default = false;
        };
      };
      fileSystems = mkOption {
        type = types.attrsOf (types.submodule fileSystemModule);
        default = { };
      };

      system.systemBuilderCommands = mkOption {
        type = types.lines;
        internal = true;
        default = "";
      };
      system.preSwitchChecks = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      system.extraDependencies = mkOption {
        type = types.listOf types.pathInStore;
        default = [ ];
      };
      system.build = mkOption {
        type = types.lazyAttrsOf types.unspecified;
        default = { };
      };

      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule serviceModule);
        default = { };
      };
      systemd.tmpfiles.rules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };

      services.postgresql = {
        enable = lib.mkEnableOption "PostgreSQL";
        package = mkOption {
          type = types.package;
          default = pkgs.postgresql_16;
        };
        dataDir = mkOption {
          type = types.path;
        };
      };
      services.fwupd = {
        enable = lib.mkEnableOption "fwupd";
        daemonSettings = freeform;
      };
      virtualisation = freeform;
    };
    config = {
      _module.args = { inherit pkgs utils; };
      system.build.toplevel = drv "nixos-system-test" { };
    };
  };

  # services.postgresql.dataDir's default needs the config: a module of its own.
  postgresqlDefaults =
    { config, ... }:
    {
      services.postgresql.dataDir = lib.mkOptionDefault "/var/lib/postgresql/${config.services.postgresql.package.psqlSchema}";
    };
}

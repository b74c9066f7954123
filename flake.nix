{
  description = "bootstate: a persistent state machine advanced at NixOS boot phases";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f (import nixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
      }));
      bootstateModule =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          boot.state.package = lib.mkDefault (
            pkgs.bootstate or (pkgs.callPackage ./nixos/package.nix { })
          );
        };
    in
    {
      overlays.default = final: prev: {
        # The source is filtered in package.nix (lib.fileset), not `self`: the package does not
        # rebuild when docs, the flake or a Nix expression change.
        bootstate = final.callPackage ./nixos/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.bootstate;
        bootstate = pkgs.bootstate;
      });

      # No nixpkgs.overlays here: they cannot be set where pkgs is read-only (runNixOSTest).
      # Named, and as the default; the same module (not through `self`, which the evaluation
      # in tests/nixos/eval-module.nix does not have).
      nixosModules = {
        bootstate = bootstateModule;
        default = bootstateModule;
      };

      # `nix flake check`: the package's own ctest suite (doCheck) and the NixOS VM tests.
      checks = forAllSystems (
        pkgs:
        {
          package = pkgs.bootstate;
        }
        // import ./nixos/tests {
          inherit pkgs;
          module = self.nixosModules.default;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.bootstate ];
          packages = [ pkgs.clang-tools pkgs.gdb pkgs.nixfmt pkgs.shellcheck pkgs.jq ];
        };
      });

      # nixfmt is the RFC 166 formatter; nixfmt-rfc-style is a deprecated alias of it
      # (pkgs/top-level/aliases.nix, 2025-07-14: warnOnInstantiate).
      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}

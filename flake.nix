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
    in
    {
      overlays.default = final: prev: {
        bootstate = final.callPackage ./nixos/package.nix { src = self; };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.bootstate;
        bootstate = pkgs.bootstate;
      });

      # No nixpkgs.overlays here: they cannot be set where pkgs is read-only (runNixOSTest).
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          boot.state.package = lib.mkDefault (
            pkgs.bootstate or (pkgs.callPackage ./nixos/package.nix { src = self; })
          );
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
          packages = [ pkgs.clang-tools pkgs.gdb pkgs.nixfmt-rfc-style pkgs.shellcheck pkgs.jq ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}

# Typed helpers for boot.state.migrations, exposed as `config.boot.state.lib` (builtins only,
# so tests/nixos can evaluate them without nixpkgs).
#
#   boot.state.migrations.grow-root = {
#     description = "Grow the root partition to the end of the disk";
#     keep = true;
#     steps = [
#       (config.boot.state.lib.storageStep {
#         id = "grow";
#         operations = [
#           (config.boot.state.lib.ops.growPartition { disk = "/dev/vda"; partition = "PARTLABEL=root"; })
#         ];
#       })
#     ];
#   };
let
  when = cond: attrs: if cond then attrs else { };
  destroy = args: when (args.allowDestroy or false) { "allow-destroy" = true; };
  # Keeps only the optional fields that were given (null = not given).
  present = attrs: builtins.removeAttrs attrs (builtins.filter (n: attrs.${n} == null) (builtins.attrNames attrs));
in
rec {
  # Storage operations, in the plan's own syntax (docs/DESIGN.md "Plan", core/plan_storage.cpp).
  ops = {
    growPartition =
      { disk, partition, size ? "max", allowDestroy ? false }@args:
      { op = "grow-partition"; inherit disk partition size; } // destroy args;
    addPartition =
      { disk, name, type, size, uuid ? null, allowDestroy ? false }@args:
      { op = "add-partition"; inherit disk name type size; } // present { inherit uuid; } // destroy args;
    setPartitionName = { disk, partition, name }: { op = "set-partition-name"; inherit disk partition name; };
    setPartitionType = { disk, partition, type }: { op = "set-partition-type"; inherit disk partition type; };
    setPartitionAttrs = { disk, partition, attrs }: { op = "set-partition-attrs"; inherit disk partition attrs; };
    require =
      { device, fstype ? null, label ? null, uuid ? null, minSize ? null }:
      { op = "require"; inherit device; } // present { inherit fstype label uuid; "min-size" = minSize; };
  };

  # A storage step; runs before the root file system is mounted unless told otherwise.
  storageStep =
    { id, operations, phase ? "initrd-pre-mount", ... }@args:
    args // { kind = "storage"; inherit phase; };

  # A firmware step (post-activation, through fwupd). `cabinet` may be a path or a package.
  firmwareStep =
    { id, device, cabinet, version, ... }@args:
    args // { kind = "firmware"; phase = "post-activation"; };

  # A command step. `command` is a package (its meta.mainProgram runs), a path or a script
  # (pkgs.writeShellScript …), or an argv list whose first element is absolute.
  commandStep = { id, command, phase ? "post-activation", ... }@args: args // { kind = "command"; inherit phase; };
}

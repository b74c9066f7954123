# A plan rendered by nixos/lib/plan.nix from values shaped like the module's normalised
# options, covering every step kind and key; tests/nixos checks the C++ parser accepts it.
let
  plan = import ../../nixos/lib/plan.nix;
  h = import ../../nixos/lib/helpers.nix;
  step = s: {
    timeout = null; reboot = false; idempotent = false; preview = ""; command = [ ]; check = [ ];
    environment = { }; operations = [ ]; device = ""; cabinet = ""; version = "";
    allowOlder = false; allowReinstall = false;
  } // s;
  migration = m: { description = ""; policy = "required"; after = [ ]; backup = [ ]; keep = false; undo = [ ]; } // m;
  migrations = [
    (migration {
      id = "grow-root";
      keep = true;
      steps = [
        (step (h.storageStep {
          id = "grow";
          operations = [
            (h.ops.require { device = "PARTLABEL=root"; fstype = "ext4"; minSize = "1G"; })
            (h.ops.growPartition { disk = "/dev/vda"; partition = "PARTLABEL=root"; })
            (h.ops.addPartition { disk = "/dev/vda"; name = "swap"; type = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"; size = "512M"; allowDestroy = true; })
            (h.ops.setPartitionAttrs { disk = "/dev/vda"; partition = "2"; attrs = [ "RequiredPartition" 60 ]; })
          ];
        }))
      ];
    })
    (migration {
      id = "move-data";
      description = "move data";
      policy = "recommended";
      after = [ "grow-root" ];
      backup = [ "/srv/data" ];
      steps = [
        (step { id = "relabel"; phase = "pre-switch-root"; kind = "command"; command = [ "/nix/store/x-relabel/bin/relabel" "--all" ]; idempotent = true; timeout = 120; user = "0"; group = "6"; })
        (step { id = "move"; phase = "post-activation"; kind = "command"; command = [ "/nix/store/x-move" ]; check = [ "/nix/store/x-moved" ]; environment = { DEST = "/var/lib/data"; }; reboot = true; preview = "moves /srv/data"; user = "postgres"; })
      ];
      undo = [
        (step { id = "move-back"; phase = "post-activation"; kind = "command"; command = [ "/nix/store/x-move-back" ]; })
      ];
      # Offered by the `move` step's items ($BOOTSTATE_ITEMS); plan syntax, as a check's.
      resolutions = [
        {
          id = "free-space";
          description = "delete the old snapshots";
          steps = [ { id = "prune"; phase = "post-activation"; kind = "command"; command = [ "/nix/store/x-prune" ]; } ];
          undo = [ { id = "keep"; phase = "post-activation"; kind = "command"; command = [ "/nix/store/x-keep" ]; } ];
        }
      ];
    })
    (migration {
      id = "webcam-fw";
      policy = "optional";
      steps = [
        (step (h.firmwareStep { id = "flash"; device = "b585990a-003e-5270-89d5-3705a17f9a43"; cabinet = "/nix/store/x-fw/fake.cab"; version = "1.2.4"; allowOlder = true; }))
      ];
    })
  ];
in
{
  toplevel = plan.planText { generation = plan.generationPlaceholder; inherit migrations; };
  initrd = plan.planText { generation = plan.initrdGeneration; inherit migrations; };
  placeholder = "@bootstateToplevel@" == plan.generationPlaceholder;
}

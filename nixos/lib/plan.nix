# Rendering of plan.json, schema 1 (docs/DESIGN.md "Plan"), from the values of the
# boot.state options after the module has normalised them.
#
# Builtins only, no nixpkgs: tests/nixos evaluates this file with plain `nix-instantiate --eval`
# on a machine without nixpkgs and feeds the result to the C++ plan parser, so the module and
# the parser are checked against each other.
#
# Input shapes (what nixos/module.nix hands over):
#   step      = { id, phase, kind, timeout (int or null), reboot, idempotent, preview,
#                 command (list of strings), check (list of strings, [] = none),
#                 environment (attrs of strings), operations (list of attrs in plan syntax),
#                 device, cabinet, version (strings), allowOlder, allowReinstall }
#   migration = { id, description, policy, after, backup, keep, steps, undo,
#                 resolutions (list of attrs in plan syntax, optional) }
rec {
  # Marker the module substitutes with the toplevel's own store path while building the
  # toplevel (system.systemBuilderCommands); see docs/NIXOS.md "Which generation a plan names".
  generationPlaceholder = "@bootstateToplevel@";

  # The `generation` of the copy in the initrd, which cannot know its toplevel (the toplevel
  # refers to the initrd, not the other way round). An open contract question: docs/NIXOS.md.
  initrdGeneration = "/run/booted-system";

  when = cond: attrs: if cond then attrs else { };

  renderStep =
    step:
    {
      inherit (step) id phase kind;
      reboot = step.reboot;
      idempotent = step.idempotent;
    }
    // when (step.timeout != null) { timeout = step.timeout; }
    // when (step.preview != "") { preview = step.preview; }
    // (
      if step.kind == "command" then
        { command = step.command; }
        // when (step.check != [ ]) { check = step.check; }
        // when (step.environment != { }) { environment = step.environment; }
        // when ((step.user or null) != null) { user = step.user; }
        // when ((step.group or null) != null) { group = step.group; }
      else if step.kind == "storage" then
        { operations = step.operations; }
      else
        {
          inherit (step) device cabinet version;
          "allow-older" = step.allowOlder;
          "allow-reinstall" = step.allowReinstall;
        }
    );

  renderMigration =
    migration:
    {
      inherit (migration) id description policy after backup keep;
      steps = map renderStep migration.steps;
    }
    // when (migration.undo != [ ]) { undo = map renderStep migration.undo; }
    # In plan syntax already, as checks are; left out when none, so the text and digest of a
    # migration without them stay as they were.
    // when ((migration.resolutions or [ ]) != [ ]) { inherit (migration) resolutions; };

  # The whole document as an attribute set; builtins.toJSON sorts the keys, so the text (and
  # with it every migration's digest) depends only on the definitions.
  renderPlan =
    {
      generation,
      migrations,
      checks ? [ ],
    }:
    {
      schema = 1;
      inherit generation;
      migrations = map renderMigration migrations;
    }
    # Checks are already in plan syntax (nixos/checks/checks.nix, nixos/postgresql/check.nix).
    # Without any, the key is left out: the text and digest of such plans stay as they were.
    // when (checks != [ ]) { inherit checks; };

  planText = args: builtins.toJSON (renderPlan args);
}

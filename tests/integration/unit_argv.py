"""The command lines of the phase units, read from where they are declared: nixos/module.nix
(the NixOS units) and units/*.service.in (the installed ones). Tests run exactly these argvs
through the real binary (with --root), so a change to a unit's command line changes what the
tests run instead of leaving a copy behind in a test.

Only the interpolations named in MODULE_VALUES are filled in; any other `${...}` in an
ExecStart= makes `module_argv` fail, so a new one cannot slip past the tests unrendered.
"""

import os
import re

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODULE = os.path.join(SOURCE, "nixos", "module.nix")
UNITS = os.path.join(SOURCE, "units")

# The module's let-bindings a unit command uses, with the values of a machine whose ESP is at
# /boot and whose boot.state.extraArgs is left empty (the default).
MODULE_VALUES = {
    "${cfg.espMountPoint}": "/boot",
    "${espInitrd}": "/bootstate",
    "${commonArgs}": "",
}


def _read(path):
    with open(path) as file:
        return file.read()


def _split(command, binary, root, where):
    """`command` with ${bootstateCli} → binary, then `--root root` as the first option."""
    for name, value in MODULE_VALUES.items():
        command = command.replace(name, value)
    if not command.startswith("${bootstateCli} "):
        raise ValueError("%s: does not start with ${bootstateCli}: %s" % (where, command))
    rest = command[len("${bootstateCli} "):]
    if "${" in rest or "@" in rest:
        raise ValueError("%s: an interpolation the tests do not render: %s" % (where, rest))
    return [binary, "--root", root] + rest.split()


def module_exec_start(phase):
    """The ExecStart string nixos/module.nix declares for `phase`, unrendered."""
    text = _read(MODULE)
    if phase == "post-activation":
        found = re.findall(r'ExecStart = "(\$\{bootstateCli\}[^"]*)";', text)
        found = [line for line in found if line.endswith("run --phase post-activation")]
    else:
        # The two initrd units: ExecStart = initrdExec "PHASE", one function for both.
        if 'ExecStart = initrdExec "%s";' % phase not in text:
            raise ValueError("nixos/module.nix: no `ExecStart = initrdExec \"%s\"`" % phase)
        found = re.findall(r'initrdExec =\s*phase:\s*"([^"]*)";', text)
        found = [line.replace("${phase}", phase) for line in found]
    if len(found) != 1:
        raise ValueError("nixos/module.nix: %d ExecStart lines for %s" % (len(found), phase))
    return found[0]


def module_argv(phase, binary, root):
    """The argv the NixOS unit of `phase` runs, against the tree `root`."""
    return _split(module_exec_start(phase), binary, root, "nixos/module.nix " + phase)


def unit_file(phase):
    """units/bootstate-PHASE.service.in as {key: [values]} (comments and sections dropped)."""
    keys = {}
    for line in _read(os.path.join(UNITS, "bootstate-%s.service.in" % phase)).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key, []).append(value)
    return keys


def unit_file_argv(phase, binary, root):
    """The argv the installed unit of `phase` runs, against the tree `root`."""
    (command,) = unit_file(phase)["ExecStart"]
    prefix = "@BOOTSTATE_BIN@ "
    if not command.startswith(prefix):
        raise ValueError("units/bootstate-%s.service.in: ExecStart=%s" % (phase, command))
    return [binary, "--root", root] + command[len(prefix):].split()

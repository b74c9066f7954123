# fish completion for bootstate(8): commands, options, phases, and the migration and step
# ids of `bootstate --json status` (with the --root/--esp/--plan given on the line). Installed
# as $datadir/fish/vendor_completions.d/bootstate.fish.

set -l __bootstate_commands run status preview history log metrics accept decline retry choose cancel help version

# ids from bootstate's own pretty JSON (two spaces per level): migrations or steps.
function __bootstate_ids -a kind
    set -l passed
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        switch $words[$i]
            case --root --esp --plan
                set -a passed $words[$i] $words[(math $i + 1)]
        end
    end
    bootstate $passed --json status 2>/dev/null | awk -v kind=$kind '
        /^  "[a-z_]+": / { top = $1 }
        function value(line) { sub(/^ *"id": "/, "", line); sub(/",?$/, "", line); return line }
        top == "\"migrations\":" && /^      "id": "/ {
            migration = value($0)
            if (kind == "migrations" || kind == "steps") print migration
        }
        top == "\"migrations\":" && /^          "id": "/ { if (kind == "steps") print migration "/" value($0) }'
end

complete -c bootstate -f
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a run -d 'advance the state machine (used by the units)'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a status -d 'what is booted, the attempt, every migration and step'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a preview -d 'what booting a generation will do'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a history -d 'past attempts'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a log -d 'the output of a step'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a metrics -d 'node-exporter textfile metrics'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a accept -d 'let an optional migration run'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a decline -d 'do not run a migration'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a retry -d 'run a failed migration again'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a choose -d 'choose how a check item is resolved'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a cancel -d 'abandon the attempt in progress'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a help -d 'show the help'
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a version -d 'show the version'

# Global options.
complete -c bootstate -l root -r -a '(__fish_complete_directories)' -d 'use every absolute path below DIR'
complete -c bootstate -l esp -r -F -d 'the mounted ESP with the state'
complete -c bootstate -l boot -r -F -d 'the mounted XBOOTLDR partition'
complete -c bootstate -l plan -r -F -d 'the plan to use'
complete -c bootstate -l json -d 'machine-readable output'
complete -c bootstate -l no-reboot -d 'exit 4 instead of rebooting'
complete -c bootstate -l no-pager -d 'accepted; bootstate never pages'
complete -c bootstate -s h -l help -d 'show the help'
complete -c bootstate -l version -d 'show the version'

# Options of one command.
complete -c bootstate -n '__fish_seen_subcommand_from run' -l phase -x -a 'initrd-pre-mount pre-switch-root post-activation' -d 'the boot phase'
complete -c bootstate -n '__fish_seen_subcommand_from log' -l attempt -x -d 'the attempt number'
complete -c bootstate -n '__fish_seen_subcommand_from log' -s f -l follow -d 'follow a running step'
complete -c bootstate -n '__fish_seen_subcommand_from metrics' -s o -l output -r -F -d 'replace FILE atomically'
complete -c bootstate -n '__fish_seen_subcommand_from choose' -l clear -d 'withdraw the choice made for ITEM'

# Arguments.
complete -c bootstate -n '__fish_seen_subcommand_from accept decline retry' -x -a '(__bootstate_ids migrations)'
complete -c bootstate -n '__fish_seen_subcommand_from log' -x -a '(__bootstate_ids steps)'
complete -c bootstate -n '__fish_seen_subcommand_from preview' -F
complete -c bootstate -n '__fish_seen_subcommand_from help' -x -a "$__bootstate_commands"

# fish completion for bootstate(8): commands, options, phases, the migration and step ids, and
# the item ids and resolutions (for `choose`) of `bootstate --json status` (with the
# --root/--esp/--plan given on the line). Installed as
# $datadir/fish/vendor_completions.d/bootstate.fish.

set -l __bootstate_commands run status preview history log metrics accept decline retry choose cancel help version

# The --root/--esp/--plan options given on the line, to pass on to `bootstate status`.
function __bootstate_passed
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        switch $words[$i]
            case --root --esp --plan
                printf '%s\n' $words[$i] $words[(math $i + 1)]
        end
    end
end

# ids from bootstate's own pretty JSON (two spaces per level): migrations or steps.
function __bootstate_ids -a kind
    set -l passed (__bootstate_passed)
    bootstate $passed --json status 2>/dev/null | awk -v kind=$kind '
        /^  "[a-z_]+": / { top = $1 }
        function value(line) { sub(/^ *"id": "/, "", line); sub(/",?$/, "", line); return line }
        top == "\"migrations\":" && /^      "id": "/ {
            migration = value($0)
            if (kind == "migrations" || kind == "steps") print migration
        }
        top == "\"migrations\":" && /^          "id": "/ { if (kind == "steps") print migration "/" value($0) }'
end

# From items[]: the item arguments of `choose` (no ITEM: the ids of items not resolved yet,
# CHECK/ID where two checks report the same id), or the resolution names item ITEM offers.
# With --plan GEN on the line: the items GEN's checks report now (`preview`), which is what
# `choose --plan GEN` accepts before GEN was ever booted.
function __bootstate_items -a item
    set -l passed (__bootstate_passed)
    set -l source status
    contains -- --plan $passed; and set source preview
    bootstate $passed --json $source 2>/dev/null | awk -v item="$item" '
        /^  "[a-z_]+": / { top = $1 }
        function value(line) { sub(/^ *"[a-z_]+": "/, "", line); sub(/",?$/, "", line); return line }
        top != "\"items\":" { next }
        /^      "id": "/ { id = value($0); resolutions = "" }
        /^      "check": "/ { check = value($0) }
        /^      "state": "/ { state = value($0) }
        /^          "id": "/ { resolutions = resolutions " " value($0) }
        /^    }/ { n++; ids[n] = id; checks[n] = check; states[n] = state; offered[n] = resolutions }
        END {
            for (i = 1; i <= n; i++)
                for (j = 1; j <= n; j++)
                    if (ids[i] == ids[j] && checks[i] != checks[j]) shared[ids[i]] = 1
            for (i = 1; i <= n; i++) {
                name = (ids[i] in shared) ? checks[i] "/" ids[i] : ids[i]
                if (item == "") {
                    if (states[i] != "resolved" && !(name in seen)) { seen[name] = 1; print name }
                } else if (item == name || item == checks[i] "/" ids[i]) {
                    count = split(offered[i], names, " ")
                    for (k = 1; k <= count; k++)
                        if (!(names[k] in seen)) { seen[names[k]] = 1; print names[k] }
                }
            }
        }'
end

# The arguments of `choose` typed so far: no item yet → items; an item → its resolutions.
function __bootstate_choose_arguments
    set -l words (commandline -opc)
    set -l arguments
    set -l seen_command 0
    set -l skip 0
    for word in $words[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $word
            case --root --esp --boot --plan
                set skip 1
            case '-*'
            case '*'
                if test $seen_command -eq 1
                    set -a arguments $word
                else
                    set seen_command 1
                end
        end
    end
    switch (count $arguments)
        case 0
            __bootstate_items ''
        case 1
            __bootstate_items $arguments[1]
            echo --clear
    end
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
complete -c bootstate -n "not __fish_seen_subcommand_from $__bootstate_commands" -a retry -d 'run a failed migration (or check) again'
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
complete -c bootstate -n '__fish_seen_subcommand_from run' -s j -l jobs -x -d 'steps of independent migrations at once'
complete -c bootstate -n '__fish_seen_subcommand_from log' -l attempt -x -d 'the attempt number'
complete -c bootstate -n '__fish_seen_subcommand_from log' -s f -l follow -d 'follow a running step'
complete -c bootstate -n '__fish_seen_subcommand_from metrics' -s o -l output -r -F -d 'replace FILE atomically'
complete -c bootstate -n '__fish_seen_subcommand_from choose' -l clear -d 'withdraw the choice made for ITEM'

# Arguments.
complete -c bootstate -n '__fish_seen_subcommand_from accept decline retry' -x -a '(__bootstate_ids migrations)'
complete -c bootstate -n '__fish_seen_subcommand_from log' -x -a '(__bootstate_ids steps)'
complete -c bootstate -n '__fish_seen_subcommand_from preview' -F
complete -c bootstate -n '__fish_seen_subcommand_from choose' -x -a '(__bootstate_choose_arguments)'
complete -c bootstate -n '__fish_seen_subcommand_from help' -x -a "$__bootstate_commands"

# bash completion for bootstate(8): commands, options, phases, the migration and step ids, and
# the item ids and resolutions (for `choose`) of `bootstate --json status` (the
# --root/--esp/--plan given on the line are passed on, so a tree's ids complete too). Installed as
# $datadir/bash-completion/completions/bootstate; needs nothing from bash-completion itself.

# Prints ids from `bootstate --json status`: KIND is migrations or steps (MIGRATION/STEP).
# The JSON is bootstate's own pretty output (two spaces per level), so awk can read it by depth.
_bootstate_ids() {
    local kind=$1
    shift
    bootstate "$@" --json status 2>/dev/null | awk -v kind="$kind" '
        /^  "[a-z_]+": / { top = $1 }
        function value(line) { sub(/^ *"id": "/, "", line); sub(/",?$/, "", line); return line }
        top == "\"migrations\":" && /^      "id": "/ {
            migration = value($0)
            if (kind == "migrations" || kind == "steps") print migration
        }
        top == "\"migrations\":" && /^          "id": "/ { if (kind == "steps") print migration "/" value($0) }'
}

# Prints, from the items[] of `bootstate --json status`, the item arguments of `bootstate
# choose` (ITEM empty: ids of the items not resolved yet, CHECK/ID where two checks report the
# same id, as status prints them), or the resolution names item ITEM offers.
# With --plan GEN on the line the items are those GEN's checks report now (`preview`): what
# `choose --plan GEN` accepts before GEN was ever booted.
_bootstate_items() {
    local item=$1 source=status word
    shift
    for word in "$@"; do [[ $word == --plan ]] && source=preview; done
    bootstate "$@" --json "$source" 2>/dev/null | awk -v item="$item" '
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
}

_bootstate() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="run status preview history log metrics accept decline retry choose cancel help version"
    local global_options="--root --esp --boot --plan --json --no-reboot --no-pager --help -h --version"
    local phases="initrd-pre-mount pre-switch-root post-activation"
    local command="" i
    local passed=()  # --root/--esp/--plan as given, for the status call
    local arguments=()  # the command's own arguments before the word completed
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root | --esp | --boot | --plan)
                passed+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
                ((i++))
                ;;
            --phase | --jobs | -j | --attempt | --output | -o) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $command ]]; then
                    command=${COMP_WORDS[i]}
                else
                    arguments+=("${COMP_WORDS[i]}")
                fi
                ;;
        esac
    done

    case $prev in
        --phase)
            mapfile -t COMPREPLY < <(compgen -W "$phases" -- "$cur")
            return
            ;;
        --root)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            return
            ;;
        --esp | --boot | --plan | --output | -o)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return
            ;;
        --attempt)
            local numbers
            numbers=$(bootstate "${passed[@]}" --json history \
                2>/dev/null | awk '/^    "number": / { sub(/,$/, "", $2); print $2 }')
            mapfile -t COMPREPLY < <(compgen -W "$numbers" -- "$cur")
            return
            ;;
    esac

    if [[ $cur == -* ]]; then
        local options=$global_options
        case $command in
            run) options+=" --phase --jobs -j" ;;
            log) options+=" --attempt --follow -f" ;;
            metrics) options+=" --output -o" ;;
            choose) options+=" --clear" ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return
    fi
    case $command in
        "")
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
            ;;
        help)
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
            ;;
        accept | decline | retry)
            mapfile -t COMPREPLY < <(compgen -W "$(_bootstate_ids migrations "${passed[@]}")" -- "$cur")
            ;;
        log)
            mapfile -t COMPREPLY < <(compgen -W "$(_bootstate_ids steps "${passed[@]}")" -- "$cur")
            ;;
        preview)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            ;;
        choose)
            # choose ITEM RESOLUTION | choose ITEM --clear
            if ((${#arguments[@]} == 0)); then
                mapfile -t COMPREPLY < <(compgen -W "$(_bootstate_items "" "${passed[@]}")" -- "$cur")
            elif ((${#arguments[@]} == 1)); then
                mapfile -t COMPREPLY < <(compgen -W "$(_bootstate_items "${arguments[0]}" "${passed[@]}") --clear" -- "$cur")
            fi
            ;;
        *)
            COMPREPLY=()
            ;;
    esac
}

complete -F _bootstate bootstate

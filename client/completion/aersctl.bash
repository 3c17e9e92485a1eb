# bash completion for aersctl: subcommands, options, and from the running
# daemon (asked with the same --socket/--target/--token-file/--tls-* options
# as the command line being completed) node names, parameters, kinds and
# presets. Installed as /usr/share/bash-completion/completions/aersctl.

# The connection options already typed, to reach the same daemon.
_aersctl_conn() {
  local i
  _aersctl_conn_args=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --socket | --target | --token-file | --tls-ca | --tls-cert | --tls-key)
        _aersctl_conn_args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
        ((i++))
        ;;
    esac
  done
}

# Asks the daemon (1 s deadline, errors silenced): nodes | kinds | params NODE | presets KIND
_aersctl_ask() {
  local what=$1 arg=${2:-}
  _aersctl_conn
  case $what in
    nodes)
      "${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 graph 2>/dev/null |
        awk '$1 == "node" {print $2}'
      ;;
    ports)
      "${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 graph 2>/dev/null |
        awk '$1 == "node" || $1 == "input" || $1 == "output" {print $2}'
      ;;
    kinds)
      "${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 kinds 2>/dev/null |
        awk -F: '/^[^ ]/ {print $1}'
      ;;
    params)  # the parameters of node ARG's kind
      local kind
      kind=$("${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 graph 2>/dev/null |
        awk -v n="$arg" '$1 == "node" && $2 == n {k = $3; sub(/^\(/, "", k); sub(/,$/, "", k); print k}')
      [[ -n $kind ]] || return
      "${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 kinds 2>/dev/null |
        awk -v k="$kind" '/^[^ ]/ {on = ($1 == k ":")} on && /^  [a-z]/ && $1 != "preset" {print $1}'
      ;;
    presets)  # the presets of kind ARG
      "${COMP_WORDS[0]}" "${_aersctl_conn_args[@]}" --timeout 1 kinds 2>/dev/null |
        awk -v k="$arg" '/^[^ ]/ {on = ($1 == k ":")} on && $1 == "preset" {print $2}'
      ;;
  esac
}

_aersctl() {
  local cur prev words cword
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="status graph kinds add rm connect disconnect set apply reset watch top loudness-reset health plugins plugin"
  local globals="--socket --target --token-file --tls-ca --tls-cert --tls-key --timeout --expect-revision --json --help"

  # Option arguments first.
  case $prev in
    --socket | --token-file | --tls-ca | --tls-cert | --tls-key | -p | -s)
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
    --target | --timeout | --expect-revision | --channels | --count | --rate | --trusted-comment)
      COMPREPLY=()
      return
      ;;
    --algorithm)
      COMPREPLY=($(compgen -W "sha256 blake2b" -- "$cur"))
      return
      ;;
  esac

  # The command and its position among the non-option words.
  local i cmd="" sub="" args=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --socket | --target | --token-file | --tls-ca | --tls-cert | --tls-key | --timeout | \
        --expect-revision | --channels | --count | --rate | --param | --preset | --algorithm | \
        --trusted-comment | -p | -s)
        ((i++))
        ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=${COMP_WORDS[i]}
        elif [[ $cmd == plugin && -z $sub ]]; then
          sub=${COMP_WORDS[i]}
        else
          args+=("${COMP_WORDS[i]}")
        fi
        ;;
    esac
  done

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$globals" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  case $cmd in
    graph)
      COMPREPLY=($(compgen -W "--json --yaml --dot" -- "$cur"))
      ;;
    rm)
      ((${#args[@]} == 0)) && COMPREPLY=($(compgen -W "$(_aersctl_ask nodes)" -- "$cur"))
      ;;
    connect | disconnect)
      ((${#args[@]} < 2)) && COMPREPLY=($(compgen -W "$(_aersctl_ask ports)" -- "$cur"))
      ;;
    set)
      case ${#args[@]} in
        0) COMPREPLY=($(compgen -W "$(_aersctl_ask nodes)" -- "$cur")) ;;
        1) COMPREPLY=($(compgen -W "$(_aersctl_ask params "${args[0]}")" -- "$cur")) ;;
        2) COMPREPLY=($(compgen -W "true false" -- "$cur")) ;;
      esac
      ;;
    add)
      if [[ $prev == --preset ]]; then
        ((${#args[@]} >= 2)) && COMPREPLY=($(compgen -W "$(_aersctl_ask presets "${args[1]}")" -- "$cur"))
      elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--channels --preset --param" -- "$cur"))
      elif ((${#args[@]} == 1)); then
        COMPREPLY=($(compgen -W "$(_aersctl_ask kinds)" -- "$cur"))
      fi
      ;;
    apply)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--dry-run" -- "$cur"))
      else
        COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur"))
      fi
      ;;
    watch) COMPREPLY=($(compgen -W "--count" -- "$cur")) ;;
    top)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--once --rate" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(_aersctl_ask nodes)" -- "$cur"))
      fi
      ;;
    loudness-reset) COMPREPLY=($(compgen -W "$(_aersctl_ask nodes)" -- "$cur")) ;;
    plugin)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "hash keygen sign verify" -- "$cur"))
      elif [[ $cur == -* ]]; then
        case $sub in
          hash) COMPREPLY=($(compgen -W "--write --algorithm" -- "$cur")) ;;
          keygen) COMPREPLY=($(compgen -W "-p -s --force" -- "$cur")) ;;
          sign) COMPREPLY=($(compgen -W "-s --trusted-comment --legacy" -- "$cur")) ;;
          verify) COMPREPLY=($(compgen -W "-p" -- "$cur")) ;;
        esac
      else
        COMPREPLY=($(compgen -d -- "$cur"))
      fi
      ;;
  esac
}

complete -F _aersctl aersctl

#!/usr/bin/env bash
# The include directions the daemon's layers allow (docs/architecture.md).
# Fails, naming FILE:LINE and the rule, when a file under daemon/DIR/ or
# client/ includes a project header it may not use.
#
#   check-layers.sh [--stamp FILE] SOURCE_ROOT
#
# Each row: a directory, then what its files may include ("dir" for a whole
# layer, "dir/file.h" for one header). The daemon's own wiring (daemon/*.cc)
# may include anything. Includes of system and third-party headers and of
# generated protobuf headers are not checked here (check-rt-includes.sh
# keeps daemon/rt/ free of third-party headers). Layers above config use
# only its public headers (config.h, graph_yaml.h), not its internals.
set -euo pipefail
stamp=
if [[ ${1:-} == --stamp ]]; then stamp=$2; shift 2; fi
root=${1:?usage: check-layers.sh [--stamp FILE] SOURCE_ROOT}

declare -A allowed=(
  [daemon/rt]="rt"
  [daemon/model]="model rt"
  [daemon/dsp]="dsp model rt"
  [daemon/compile]="compile model rt"
  [daemon/config]="config model"
  [daemon/engine]="engine compile model rt"
  [daemon/backend]="backend engine model rt"
  [daemon/state]="state config/config.h config/graph_yaml.h model"
  [daemon/control]="control engine state config/config.h config/graph_yaml.h model rt backend/backend.h backend/dsp_timer.h"
  [daemon/plugin]="plugin model rt aers"
  [client]="control/paths.h control/utf8.h plugin/tool.h plugin/manifest.h plugin/secure_open.h"
)
layers=" rt model dsp compile config engine backend state control plugin aers "

status=0
for dir in "${!allowed[@]}"; do
  rules=" ${allowed[$dir]} "
  [[ -d $root/$dir ]] || continue
  while IFS= read -r hit; do
    file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; text=${rest#*:}
    header=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$text")
    top=${header%%/*}
    [[ $header == */* && $layers == *" $top "* ]] || continue  # not a layer header
    [[ $rules == *" $top "* || $rules == *" $header "* ]] && continue
    echo "${file#"$root"/}:$line: error: $dir may not include \"$header\"" \
         "(allowed: ${allowed[$dir]}; scripts/check-layers.sh)" >&2
    status=1
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$dir" \
             --include='*.cc' --include='*.h' || true)
done
if [[ $status -eq 0 && -n $stamp ]]; then touch "$stamp"; fi
exit $status

#!/usr/bin/env bash
# Fails if any file under daemon/rt/ includes, directly or transitively,
# a header of a library the real-time code must not use.
#   check-rt-includes.sh STAMP RT_DIR COMPILER [ARGS...]
set -euo pipefail
stamp=$1; rt_dir=$2; shift 2
forbidden='/(yaml-cpp|grpc|grpcpp|grpc\+\+|google/protobuf|spdlog|absl|fmt)/'
status=0
for f in "$rt_dir"/*.cc "$rt_dir"/*.h; do
  deps=$("$@" -std=c++20 -x c++ -M -I"$rt_dir/.." -I"$rt_dir/../../include" "$f")
  if bad=$(grep -Eo "[^ ]*${forbidden}[^ ]*" <<<"$deps"); then
    echo "error: $f pulls in a header the audio thread must not use:" >&2
    echo "$bad" | head -5 >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && touch "$stamp"
exit $status

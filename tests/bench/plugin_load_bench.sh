#!/usr/bin/env bash
# Time to verify+load a 1 MiB plugin (the example plugin padded with a 1 MiB
# read-only array) with SHA-256 and BLAKE2b, beside sha256sum / b2sum of the
# same file in the same run. Figures go to BENCHMARKS.md ("Plugins").
#
#   tests/bench/plugin_load_bench.sh [BUILD_DIR] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
iterations=${2:-50}
ninja -C "$build" -j"${AERS_BUILD_JOBS:-2}" tests/plugin_load_bench >/dev/null
so="$build/tests/example_gain_1m.so"

echo "== $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== buildtype: $(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')"
out=$("$build/tests/plugin_load_bench" "$iterations")
grep -v '^dsp ' <<<"$out"
# DSP time of an LV2 node in aersd (Process()) against lv2bench (lilv-utils)
# running the same plugin, block size and frame count, in this run.
if command -v lv2bench >/dev/null; then
  echo
  echo "LV2 DSP time, $(grep -m1 '^dsp ' <<<"$out" | awk '{print $3}')-frame blocks (s for the frames; median of 5 / of 3):"
  while read -r _ uri block frames secs; do
    ref=()
    for _i in 1 2 3; do
      ref+=("$(lv2bench -b "$block" -n "$frames" "$uri" 2>/dev/null | awk 'NF == 2 {print $1}')")
    done
    lb=$(printf '%s\n' "${ref[@]}" | sort -g | sed -n 2p)
    awk -v u="$uri" -v a="$secs" -v b="$lb" -v n="$frames" \
      'BEGIN {printf "  %-45s aersd %.4f s  lv2bench %.4f s  ratio %.2f  (%d frames)\n", u, a, b, a / b, n}'
  done < <(grep '^dsp ' <<<"$out")
fi

# Median wall time of a command over N runs (ms), process start-up included.
median_ms() {
  local n=$1; shift
  local times=()
  for ((i = 0; i < n; i++)); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1000}'
}
echo "sha256sum  (whole process):   $(median_ms "$iterations" sha256sum "$so") ms"
echo "b2sum -l256 (whole process):  $(median_ms "$iterations" b2sum -l 256 "$so") ms"
echo "true       (process start-up): $(median_ms "$iterations" /bin/true) ms"

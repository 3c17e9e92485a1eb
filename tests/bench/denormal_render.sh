#!/usr/bin/env bash
# Denormal benchmark: `aersd render` of chain R (configs/examples/
# reference-chain.yaml) over a short noise burst followed by silence, against
# the same length of noise, in the same run. Without flush-to-zero the filter
# tails decay into subnormal floats and the silent render crawls (40-200x on
# x86-64); with it the two cost the same.
#
#   tests/bench/denormal_render.sh [--seconds N] [--runs N] [--aersd PATH]
#
# Prints the best-of-N wall time of each render and the ratio silence/noise
# (target <= 1.2), and counts subnormal samples in the burst+silence output
# (must be 0; exits non-zero otherwise).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=60
runs=3
aersd=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --aersd) aersd=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--runs N] [--aersd PATH]" >&2; exit 2 ;;
  esac
done
for c in "$aersd" "$root/build-bench/daemon/aersd" "$root/build/daemon/aersd"; do
  [[ -n $c && -x $c ]] && { aersd=$c; break; }
done
[[ -x $aersd ]] || { echo "no aersd built (scripts/test.sh builds build/)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/aers-denormal-XXXXXX")
trap 'rm -rf "$dir"' EXIT
config="$root/configs/examples/reference-chain.yaml"

# Inputs: noise for the whole length; a 100 ms burst then digital silence.
sox -n -r 48000 -c 2 -b 32 -e floating-point "$dir/noise.wav" synth "$seconds" whitenoise vol 0.5
sox -n -r 48000 -c 2 -b 32 -e floating-point "$dir/burst.wav" synth 0.1 whitenoise vol 0.5 \
  pad 0 "$((seconds))"

best() {  # best wall time of $runs renders of $1 to $2
  local best_s=""
  for ((i = 0; i < runs; i++)); do
    local t0 t1
    t0=$(date +%s.%N)
    "$aersd" render --config "$config" --input "$1" --output "$2" --log_level warn
    t1=$(date +%s.%N)
    best_s=$(awk -v a="$t0" -v b="$t1" -v c="$best_s" \
      'BEGIN { d = b - a; if (c == "" || d < c) print d; else print c }')
  done
  echo "$best_s"
}
noise_s=$(best "$dir/noise.wav" "$dir/noise-out.wav")
silence_s=$(best "$dir/burst.wav" "$dir/burst-out.wav")
ratio=$(awk -v s="$silence_s" -v n="$noise_s" 'BEGIN { printf "%.2f", s / n }')
subnormal=$(/usr/bin/python3 - "$dir/burst-out.wav" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
i = data.find(b"data") + 8  # 32-bit float WAV from aersd
count = 0
for (v,) in struct.iter_unpack("<I", data[i:i + (len(data) - i) // 4 * 4]):
    if v & 0x7f800000 == 0 and v & 0x007fffff:
        count += 1
print(count)
PY
)
echo "noise ${seconds} s: ${noise_s} s   burst+silence: ${silence_s} s   ratio silence/noise: ${ratio} (target <= 1.2)"
echo "subnormal samples in the burst+silence output: ${subnormal}"
[[ $subnormal -eq 0 ]]

#!/usr/bin/env bash
# Whole-process render benchmark: chain R through `aersd render` and through
# sox, and a pass-through render against a plain copy of the same file, in
# the same run, on the same input.
#
#   tests/bench/render_vs_sox.sh [--seconds N] [--runs N] [--period N]
#                                [--config FILE] [--tmpdir DIR]
#                                [--aersd PATH | PATH]
#
# Generates N seconds (default 600) of stereo 32-bit float 48 kHz noise plus
# tones with sox, then, in turn, best of --runs (default 5) each:
#   - renders it through chain R (configs/examples/reference-chain.yaml:
#     gain -6 dB, then hp 40, lp 18000, hp 60, lp 16000, hp 80, lp 14000,
#     hp 100, lp 12000, q 0.7071) with aersd, and with sox's RBJ biquads
#     (`highpass -2 F 0.7071q` / `lowpass -2 F 0.7071q`);
#   - renders it through a pass-through graph (inputs routed straight to the
#     outputs) with aersd: the render's I/O floor;
#   - copies it with `cp` followed by `sync FILE` (an fsync of the copy, as
#     the render fsyncs its output): the file system's floor.
# Prints the times (wall and CPU = user + sys, the latter less sensitive to
# other load), the ratios sox/aersd for chain R (targets: >= 12x wall,
# >= 8x CPU) and pass-through/cp (target: <= 1.5x wall), and chain R minus
# pass-through (the DSP's share). Then checks the chain R outputs agree (RMS
# and peak of their difference) and the pass-through output equals the
# input exactly. Exits non-zero if not; the time targets only print.
#
# Every output is deleted before each timed command, so no command pays for
# freeing the previous run's file.
#
# aersd: --aersd PATH (or a bare PATH), else build-bench/daemon/aersd, else
# build/daemon/aersd under the repo root. Use a release build for figures.
#
# Files go to a fresh directory under --tmpdir, by default /dev/shm (tmpfs)
# when it has room, else $TMPDIR or /tmp. tmpfs matters: aersd fsyncs its
# output before renaming it into place and sox does not, so on a disk the
# comparison would time the disk flush rather than the processing.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$script_dir/../.." && pwd)"

seconds=600
runs=5
period=""
config="$root/configs/examples/reference-chain.yaml"
aersd=""
tmpdir=""
# Agreement tolerances on the difference signal (full scale = 1.0). Both
# sides filter in double; aersd stores float between nodes and at the output
# (~6e-8 relative), sox stores 32-bit integers between effects.
rms_tol=1e-5
peak_tol=1e-4

usage() { sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --period) period="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --aersd) aersd="$2"; shift 2 ;;
    --tmpdir) tmpdir="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "render_vs_sox: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) aersd="$1"; shift ;;
  esac
done

if [[ -z "$aersd" ]]; then
  for cand in "$root/build-bench/daemon/aersd" "$root/build/daemon/aersd"; do
    if [[ -x "$cand" ]]; then aersd="$cand"; break; fi
  done
fi
[[ -n "$aersd" && -x "$aersd" ]] || { echo "render_vs_sox: aersd not found (pass --aersd PATH)" >&2; exit 2; }
command -v sox >/dev/null || { echo "render_vs_sox: sox not installed" >&2; exit 2; }
[[ -r "$config" ]] || { echo "render_vs_sox: config $config not readable" >&2; exit 2; }

if [[ -z "$tmpdir" ]]; then
  tmpdir="${TMPDIR:-/tmp}"
  # Four files of seconds * 48000 * 2 * 4 bytes, plus margin.
  need_kb=$(awk -v s="$seconds" 'BEGIN { printf "%d", s * 48000 * 8 * 4 / 1024 + 65536 }')
  if [[ -d /dev/shm && -w /dev/shm ]] &&
     (($(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') > need_kb)); then
    tmpdir=/dev/shm
  fi
fi
tmp="$(mktemp -d "$tmpdir/aers-render-vs-sox.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

in="$tmp/in.wav"
out_aersd="$tmp/aersd.wav"
out_sox="$tmp/sox.wav"
out_pass="$tmp/pass.wav"
out_cp="$tmp/cp.wav"
pass_config="$tmp/pass.yaml"
cat >"$pass_config" <<'YAML'
version: 1
inputs:
  - {name: in, channels: 2}
outputs:
  - {name: out, channels: 2}
routes:
  - {from: in, to: out}
YAML

# Input: different noise per channel plus a tone per channel; peak about
# -8 dBFS so neither side clips anywhere in the chain.
sox -V1 -n -r 48000 -c 2 -b 32 -e floating-point "$in" \
  synth "$seconds" whitenoise pinknoise vol 0.3 synth sine mix 997 sine mix 1499 vol 0.6

aersd_cmd=("$aersd" render --config "$config" --input "$in" --output "$out_aersd")
pass_cmd=("$aersd" render --config "$pass_config" --input "$in" --output "$out_pass")
if [[ -n "$period" ]]; then
  aersd_cmd+=(--period_frames "$period")
  pass_cmd+=(--period_frames "$period")
fi
cp_cmd=(sh -c 'cp "$1" "$2" && sync "$2"' cp "$in" "$out_cp")
sox_cmd=(sox -V1 "$in" -b 32 -e floating-point "$out_sox" gain -6
  highpass -2 40 0.7071q lowpass -2 18000 0.7071q
  highpass -2 60 0.7071q lowpass -2 16000 0.7071q
  highpass -2 80 0.7071q lowpass -2 14000 0.7071q
  highpass -2 100 0.7071q lowpass -2 12000 0.7071q)

# Runs "$@" quietly; prints "WALL CPU" in seconds (CPU = user + sys of the
# process, which other load on the machine inflates far less than wall time).
# Deletes the outputs first, outside the timing.
timed() {
  local tf="$tmp/time" TIMEFORMAT='%R %U %S'
  rm -f "$out_aersd" "$out_sox" "$out_pass" "$out_cp"
  if ! { time "$@" >"$tmp/log" 2>&1; } 2>"$tf"; then
    echo "render_vs_sox: command failed: $*" >&2
    cat "$tmp/log" >&2
    exit 1
  fi
  if grep -qi "clip" "$tmp/log"; then
    echo "render_vs_sox: clipping reported by: $*" >&2
    cat "$tmp/log" >&2
    exit 1
  fi
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$tf"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }

# Warm the page cache with the input so run 1 is not penalised.
cat "$in" >/dev/null

best_aersd="" best_sox="" cpu_aersd="" cpu_sox=""
best_pass="" best_cp="" cpu_pass="" cpu_cp=""
for ((i = 1; i <= runs; ++i)); do
  read -r wall cpu < <(timed "${aersd_cmd[@]}")
  best_aersd=$(min "$best_aersd" "$wall")
  cpu_aersd=$(min "$cpu_aersd" "$cpu")
  printf 'run %d: aersd %7.3f s (cpu %6.3f s)' "$i" "$wall" "$cpu"
  read -r wall cpu < <(timed "${sox_cmd[@]}")
  best_sox=$(min "$best_sox" "$wall")
  cpu_sox=$(min "$cpu_sox" "$cpu")
  printf '  sox %7.3f s (cpu %6.3f s)' "$wall" "$cpu"
  read -r wall cpu < <(timed "${pass_cmd[@]}")
  best_pass=$(min "$best_pass" "$wall")
  cpu_pass=$(min "$cpu_pass" "$cpu")
  printf '  pass %6.3f s (cpu %6.3f s)' "$wall" "$cpu"
  read -r wall cpu < <(timed "${cp_cmd[@]}")
  best_cp=$(min "$best_cp" "$wall")
  cpu_cp=$(min "$cpu_cp" "$cpu")
  printf '  cp+sync %6.3f s (cpu %6.3f s)\n' "$wall" "$cpu"
done
# The last timed command deleted the other outputs: make the ones checked
# below once more.
rm -f "$out_aersd" "$out_sox" "$out_pass"
"${aersd_cmd[@]}" >/dev/null 2>&1
"${sox_cmd[@]}" >/dev/null 2>&1
"${pass_cmd[@]}" >/dev/null 2>&1

# Agreement: stat of (aersd - sox) x 1000, so `stat`'s six decimals resolve
# 1e-9 (a difference of 1e-3 or more clips, and fails the check anyway).
diff_stat="$(sox -V1 -m -v 1 "$out_aersd" -v -1 "$out_sox" -n vol 1000 stat 2>&1)"
ref_stat="$(sox -V1 "$out_aersd" -n stat 2>&1)"
field() { awk -F: -v k="$1" '$1 ~ k { gsub(/ /, "", $2); print $2 }' <<<"$2"; }
milli() { awk -v x="$1" 'BEGIN { printf "%.3g", x / 1000 }'; }
diff_rms=$(milli "$(field "RMS +amplitude" "$diff_stat")")
diff_peak=$(milli "$(field "Maximum amplitude" "$diff_stat")")
diff_min=$(milli "$(field "Minimum amplitude" "$diff_stat")")
out_rms=$(field "RMS +amplitude" "$ref_stat")

frames=$(soxi -s "$in")
echo
echo "input: ${seconds} s stereo float 48 kHz ($frames frames), chain R, $runs runs each"
echo "aersd: $aersd${period:+ (period $period)}; files in $tmpdir"
rt() { awk -v s="$seconds" -v t="$1" 'BEGIN { printf "%.0f", s / t }'; }
printf 'best aersd render: %8.3f s wall (%4sx real time), %7.3f s cpu\n' "$best_aersd" \
  "$(rt "$best_aersd")" "$cpu_aersd"
printf 'best sox:          %8.3f s wall (%4sx real time), %7.3f s cpu\n' "$best_sox" \
  "$(rt "$best_sox")" "$cpu_sox"
printf 'best pass-through: %8.3f s wall (%4sx real time), %7.3f s cpu\n' "$best_pass" \
  "$(rt "$best_pass")" "$cpu_pass"
printf 'best cp + sync:    %8.3f s wall, %7.3f s cpu\n' "$best_cp" "$cpu_cp"
ratio=$(awk -v a="$best_aersd" -v s="$best_sox" 'BEGIN { printf "%.2f", s / a }')
cpu_ratio=$(awk -v a="$cpu_aersd" -v s="$cpu_sox" 'BEGIN { printf "%.2f", (a > 0) ? s / a : 0 }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 12) ? "MET" : "MISSED" }')
cpu_verdict=$(awk -v r="$cpu_ratio" 'BEGIN { print (r >= 8) ? "MET" : "MISSED" }')
echo "chain R, sox/aersd: ${ratio}x wall (target >= 12: $verdict), ${cpu_ratio}x cpu (target >= 8: $cpu_verdict)"
floor=$(awk -v p="$best_pass" -v c="$best_cp" 'BEGIN { printf "%.2f", (c > 0) ? p / c : 0 }')
floor_verdict=$(awk -v r="$floor" 'BEGIN { print (r <= 1.5) ? "MET" : "MISSED" }')
echo "pass-through / cp+sync: ${floor}x wall (target <= 1.5: $floor_verdict)"
awk -v a="$best_aersd" -v p="$best_pass" -v ca="$cpu_aersd" -v cp="$cpu_pass" 'BEGIN {
  printf "chain R - pass-through (the DSP): %.3f s wall, %.3f s cpu\n", a - p, ca - cp }'
echo "difference aersd - sox: RMS $diff_rms, max $diff_peak, min $diff_min (output RMS $out_rms)"

ok=$(awk -v r="$diff_rms" -v p="$diff_peak" -v m="$diff_min" -v o="$out_rms" \
  -v rt="$rms_tol" -v pt="$peak_tol" \
  'BEGIN { if (m < 0) m = -m; print (r <= rt && p <= pt && m <= pt && o > 0.01) ? 1 : 0 }')
if [[ "$ok" != 1 ]]; then
  echo "render_vs_sox: outputs DISAGREE (tolerance RMS $rms_tol, peak $peak_tol) or output silent" >&2
  exit 1
fi
echo "outputs agree (tolerance RMS $rms_tol, peak $peak_tol)"

# Pass-through: every sample as it went in (the headers differ: sox wrote
# the input, libsndfile the output).
pass_stat="$(sox -V1 -m -v 1 "$in" -v -1 "$out_pass" -n stat 2>&1)"
pass_max=$(field "Maximum amplitude" "$pass_stat")
pass_min=$(field "Minimum amplitude" "$pass_stat")
if [[ $(soxi -V1 -s "$out_pass") != "$frames" ]] ||
   ! awk -v a="$pass_max" -v b="$pass_min" 'BEGIN { exit !(a == 0 && b == 0) }'; then
  echo "render_vs_sox: pass-through output differs from the input" >&2
  exit 1
fi
echo "pass-through output equals the input"

#!/usr/bin/env bash
# The convolver against its peers, same run, same files: a 65,536-tap
# impulse response on stereo 48 kHz noise.
#
#   tests/bench/convolver_vs_peers.sh [--seconds N] [--jack-seconds N] [--aersd PATH]
#
# File renders (N seconds of audio, default 60), CPU seconds (user + system,
# of every process the tool starts) per second of audio:
#   aersd render  --period_frames 256 (the real-time setting) and 16384
#   BruteFIR      filter_length 256,256 (256-frame partitions, as aersd at
#                 period 256) and 65536 (one partition: 64k frames latency)
#   sox ... fir   (one large FFT block; offline only)
# Real time on a private `jackd -d dummy -p 256` (default 20 s each):
#   aersd (the daemon with one convolver node) and jconvolver (partition 256,
#   its own non-uniform partitioning beyond), CPU per second of audio.
# Ratios are printed against the fastest peer of each group.
#
# CPU is read from a cgroup v2 made for each run (/sys/fs/cgroup/unified or
# /sys/fs/cgroup; needs root), else from the shell's child rusage (which
# misses BruteFIR's forked filter processes: shown as "n/a").
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$script_dir/../.." && pwd)"
seconds=60
jack_seconds=20
aersd=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --jack-seconds) jack_seconds=$2; shift 2 ;;
    --aersd) aersd=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--jack-seconds N] [--aersd PATH]" >&2; exit 2 ;;
  esac
done
if [[ -z $aersd ]]; then
  for c in "$root/build-bench/daemon/aersd" "$root/build/daemon/aersd"; do
    [[ -x $c ]] && { aersd=$c; break; }
  done
fi
[[ -x $aersd ]] || { echo "no aersd (pass --aersd)" >&2; exit 2; }
for tool in sox brutefir jconvolver jackd jack_connect; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/install-deps.sh)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/aers-convbench.XXXXXX")
cgroot=""
for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [[ -f $d/cgroup.procs && -w $d ]] && mkdir -p "$d/aers-convbench-$$" 2>/dev/null &&
     [[ -f $d/aers-convbench-$$/cpu.stat ]]; then
    cgroot=$d
    break
  fi
done
cleanup() {
  [[ -n ${jack_pid:-} ]] && kill "$jack_pid" 2>/dev/null || true
  [[ -n $cgroot ]] && rmdir "$cgroot"/aers-convbench-$$/* "$cgroot/aers-convbench-$$" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# cpu_of NAME CMD...: runs CMD in a cgroup of its own; prints CPU seconds.
cpu_of() {
  local name=$1; shift
  if [[ -n $cgroot ]]; then
    local g="$cgroot/aers-convbench-$$/$name"
    mkdir -p "$g"
    bash -c 'echo $$ > "$0/cgroup.procs"; exec "$@"' "$g" "$@" >/dev/null 2>"$work/$name.err"
    awk '/^usage_usec/ {printf "%.3f\n", $2 / 1e6}' "$g/cpu.stat"
  else
    local t
    t=$( { /usr/bin/time -f "%U %S" "$@" >/dev/null 2>"$work/$name.err"; } 2>&1 | tail -1)
    awk '{printf "%.3f\n", $1 + $2}' <<<"$t"
  fi
}

echo "generating ${seconds} s of stereo noise and a 65536-tap response..."
sox -n -r 48000 -c 2 -e floating-point -b 32 in.wav synth "$seconds" whitenoise vol 0.5 2>/dev/null
sox -n -r 48000 -c 1 -e floating-point -b 32 ir.wav synth 65536s whitenoise \
  fade q 0 65536s 60000s vol 0.01 2>/dev/null
sox in.wav -t f32 in.raw
sox ir.wav -t f32 ir.raw
sox ir.wav -t dat - | awk 'NR > 2 {print $2}' > ir.txt
cat > conv.yaml <<YAML
version: 1
engine: {sample_rate_hz: 48000, period_frames: 256}
backend: {type: jack, jack: {server_name: aers-convbench-$$, client_name: aersd}}
inputs: [{name: in, channels: 2}]
outputs: [{name: out, channels: 2}]
nodes:
  - {name: room, kind: convolver, channels: 2, params: {ir_file: ir.wav}}
routes:
  - {from: in, to: room}
  - {from: room, to: out}
YAML
bf_conf() {  # bf_conf FILTER_LENGTH
  cat <<BF
float_bits: 32; sampling_rate: 48000; filter_length: $1;
overflow_warnings: false; show_progress: false; max_dither_table_size: 0;
coeff "c" { filename: "$work/ir.raw"; format: "FLOAT_LE"; };
input "l","r" { device: "file" { path: "$work/in.raw"; }; sample: "FLOAT_LE"; channels: 2; };
output "l","r" { device: "file" { path: "$work/bf.raw"; }; sample: "FLOAT_LE"; channels: 2; };
filter "fl" { from_inputs: "l"; to_outputs: "l"; coeff: "c"; };
filter "fr" { from_inputs: "r"; to_outputs: "r"; coeff: "c"; };
BF
}
bf_conf 256,256 > bf256.conf
bf_conf 65536 > bf64k.conf
export HOME=$work  # BruteFIR's defaults and FFTW wisdom

# A first BruteFIR run of each makes its FFTW wisdom; not timed.
brutefir bf256.conf >/dev/null 2>&1
brutefir bf64k.conf >/dev/null 2>&1

declare -A cpu
cpu[aersd_256]=$(cpu_of aersd256 "$aersd" render --config conv.yaml --input in.wav --output out.wav --period_frames 256)
cpu[aersd_16k]=$(cpu_of aersd16k "$aersd" render --config conv.yaml --input in.wav --output out.wav --period_frames 16384)
cpu[bf_256]=$(cpu_of bf256 brutefir bf256.conf)
cpu[bf_64k]=$(cpu_of bf64k brutefir bf64k.conf)
cpu[sox]=$(cpu_of sox sox in.wav -e floating-point sox.wav fir ir.txt)

per_s() { awk -v c="$1" -v s="$seconds" 'BEGIN {printf "%.4f", c / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "file render, 65536 taps, stereo, ${seconds} s of audio (CPU s per s of audio; ratio = CPU / fastest peer's)"
fastest_rt=${cpu[bf_256]}
fastest_any=$(printf "%s\n" "${cpu[bf_256]}" "${cpu[bf_64k]}" "${cpu[sox]}" | sort -g | head -1)
printf "  %-34s %8s %8s\n" "" "CPU/s" "ratio"
printf "  %-34s %8s %8s\n" "aersd render, period 256" "$(per_s "${cpu[aersd_256]}")" "$(ratio "${cpu[aersd_256]}" "$fastest_rt")  (vs BruteFIR 256,256)"
printf "  %-34s %8s %8s\n" "BruteFIR 256,256" "$(per_s "${cpu[bf_256]}")" "1.00"
printf "  %-34s %8s %8s\n" "aersd render, period 16384" "$(per_s "${cpu[aersd_16k]}")" "$(ratio "${cpu[aersd_16k]}" "$fastest_any")  (vs fastest of all)"
printf "  %-34s %8s %8s\n" "BruteFIR 65536 (one partition)" "$(per_s "${cpu[bf_64k]}")" "$(ratio "${cpu[bf_64k]}" "$fastest_any")"
printf "  %-34s %8s %8s\n" "sox fir" "$(per_s "${cpu[sox]}")" "$(ratio "${cpu[sox]}" "$fastest_any")"

# --- real time on JACK ---------------------------------------------------------
server=aers-convbench-$$
jackd -n "$server" --no-realtime -d dummy -r 48000 -p 256 >"$work/jackd.log" 2>&1 &
jack_pid=$!
for _ in $(seq 100); do
  JACK_DEFAULT_SERVER=$server jack_lsp >/dev/null 2>&1 && break
  sleep 0.1
done
export JACK_DEFAULT_SERVER=$server
# Input ports stay unconnected: the FFTs and multiply-adds of a convolver
# run the same on silence (denormals are flushed by both).
jack_run() {  # jack_run NAME CMD...: CPU over jack_seconds of running
  local name=$1; shift
  local g="" start end
  if [[ -n $cgroot ]]; then
    g="$cgroot/aers-convbench-$$/$name"
    mkdir -p "$g"
    bash -c 'echo $$ > "$0/cgroup.procs"; exec "$@"' "$g" "$@" >"$work/$name.log" 2>&1 &
  else
    "$@" >"$work/$name.log" 2>&1 &
  fi
  local pid=$!
  sleep 3  # load, plans, connections
  if [[ -n $g ]]; then
    start=$(awk '/^usage_usec/ {print $2}' "$g/cpu.stat")
    sleep "$jack_seconds"
    end=$(awk '/^usage_usec/ {print $2}' "$g/cpu.stat")
  else
    start=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep "$jack_seconds"
    end=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    start=$((start * 10000)); end=$((end * 10000))  # ticks (100 Hz) -> us
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk -v a="$start" -v b="$end" -v s="$jack_seconds" 'BEGIN {printf "%.4f\n", (b - a) / 1e6 / s}'
}
cat > jconv.conf <<JC
/cd $work
/convolver/new 2 2 256 65536
/input/name 1 in.L
/input/name 2 in.R
/output/name 1 out.L
/output/name 2 out.R
/impulse/read 1 1 1 0 0 0 1 ir.wav
/impulse/read 2 2 1 0 0 0 1 ir.wav
JC
sed 's/kind: convolver, channels: 2, params: {ir_file: ir.wav}/kind: gain, channels: 2/' conv.yaml \
  > idle.yaml
rt_aersd=$(jack_run aersd_jack "$aersd" --config conv.yaml --socket "$work/a.sock" \
  --state_file "$work/state.yaml" --mlock=false)
rt_idle=$(jack_run aersd_idle "$aersd" --config idle.yaml --socket "$work/b.sock" \
  --state_file "$work/state2.yaml" --mlock=false)
rt_jconv=$(jack_run jconvolver jconvolver -N jconvolver -s "$server" jconv.conf)
echo
echo "real time, jackd -d dummy -p 256 -r 48000, 65536 taps, stereo (CPU s per s of audio)"
printf "  %-34s %8s\n" "aersd, convolver node" "$rt_aersd"
printf "  %-34s %8s\n" "aersd, gain node instead (baseline)" "$rt_idle"
printf "  %-34s %8s\n" "jconvolver 256" "$rt_jconv"
printf "  %-34s %8s\n" "ratio aersd / jconvolver" "$(ratio "$rt_aersd" "$rt_jconv")"

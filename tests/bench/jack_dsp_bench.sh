#!/usr/bin/env bash
# DSP time per period of aersd inside a real JACK server (real-time mode).
#
#   tests/bench/jack_dsp_bench.sh [--build DIR] [--seconds N] [--periods "64 256"]
#                                 [--graphs "none chainR gain100 gain1000"]
#
# For each period size: starts `jackd -R -d dummy -r 48000 -p PERIOD` under a
# unique server name, and for each graph runs aersd as a JACK client for N
# seconds (default 60) after a 2 s warm-up (SIGUSR1 restarts aersd's DSP
# statistics so start-up is not counted). Graphs:
#   none      no aersd: the server alone (baseline load and xruns of the host)
#   chainR    configs/examples/reference-chain.yaml (gain + 8 biquads, stereo)
#   gain100   100 stereo gain nodes in series (generated)
#   gain1000  1000 stereo gain nodes in series (generated)
# Reports, per run:
#   - DSP time per period measured inside aersd around Runner::Process()
#     (CLOCK_MONOTONIC; mean, p99 from a log2 histogram with 4 buckets per
#     octave, max), read from aersd's --stats_file;
#   - the server's DSP load (jack_cpu_load(), sampled every 100 ms by
#     jack_probe: mean and max), and the xruns the server reported.
# The inputs are connected to the dummy driver's capture ports (silence); the
# built-in kinds have no data-dependent paths and the audio thread runs with
# flush-to-zero, so the figures hold for real signals.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=""
seconds=60
periods="64 256"
graphs="none chainR gain100 gain1000"
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --periods) periods=$2; shift 2 ;;
    --graphs) graphs=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ -z $build ]]; then
  for d in "$root"/build "$root"/build-*; do
    [[ -x $d/daemon/aersd && -x $d/tests/jack_probe ]] && { build=$d; break; }
  done
fi
aersd=${AERSD:-$build/daemon/aersd}
probe=${JACK_PROBE:-$build/tests/jack_probe}
[[ -x $aersd && -x $probe ]] || {
  echo "need aersd and jack_probe: pass --build DIR (a meson build dir) or set AERSD/JACK_PROBE" >&2
  exit 2
}
command -v jackd >/dev/null || { echo "jackd is not installed" >&2; exit 2; }

tmp=$(mktemp -d /tmp/aers-jack-bench.XXXXXX)
jackd_pid=""
aersd_pid=""
cleanup() {
  [[ -n $aersd_pid ]] && kill -TERM "$aersd_pid" 2>/dev/null && wait "$aersd_pid" 2>/dev/null || true
  [[ -n $jackd_pid ]] && kill -TERM "$jackd_pid" 2>/dev/null && wait "$jackd_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

gen_gains() {  # N FILE: N stereo gain nodes in series, in -> g1 -> ... -> gN -> out
  local n=$1 f=$2 i
  {
    echo "version: 1"
    echo "backend: {type: jack}"
    echo "inputs: [{name: in, channels: 2}]"
    echo "outputs: [{name: out, channels: 2}]"
    echo "nodes:"
    for ((i = 1; i <= n; i++)); do echo "  - {name: g$i, kind: gain, channels: 2, params: {gain_db: 0}}"; done
    echo "routes:"
    echo "  - {from: in, to: g1}"
    for ((i = 1; i < n; i++)); do echo "  - {from: g$i, to: g$((i + 1))}"; done
    echo "  - {from: g$n, to: out}"
  } >"$f"
}
gen_gains 100 "$tmp/gain100.yaml"
gen_gains 1000 "$tmp/gain1000.yaml"
config_of() {
  case $1 in
    chainR) echo "$root/configs/examples/reference-chain.yaml" ;;
    gain100) echo "$tmp/gain100.yaml" ;;
    gain1000) echo "$tmp/gain1000.yaml" ;;
    *) echo "unknown graph $1" >&2; exit 2 ;;
  esac
}

# Polls a command until it succeeds (bounded).
wait_for() {  # TIMEOUT_S CMD...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}
json() {  # FILE PYTHON-EXPR over d
  /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

results=()
for period in $periods; do
  server="aers-bench-$$-$period"
  jackd -R -n "$server" -d dummy -r 48000 -p "$period" >"$tmp/jackd-$period.log" 2>&1 &
  jackd_pid=$!
  wait_for 15 "$probe" ports --server "$server" || { cat "$tmp/jackd-$period.log" >&2; exit 1; }
  for graph in $graphs; do
    if [[ $graph == none ]]; then
      load=$("$probe" load --server "$server" --seconds "$seconds")
      row=$(/usr/bin/python3 - "$load" "$period" <<'EOF'
import json, sys
load = json.loads(sys.argv[1]); period = int(sys.argv[2])
print(f"{period:>6} {'none':>9} {period / 48000 * 1e6:>7.0f} {'-':>9} {'-':>9} {'-':>9} {'-':>8} "
      f"{load['cpu_load_mean']:>8.2f} {load['cpu_load_max']:>8.2f} {load['xruns']:>6}")
EOF
)
      results+=("$row")
      echo "$row" >&2
      continue
    fi
    stats="$tmp/stats-$period-$graph.json"
    rm -f "$stats"
    "$aersd" --config "$(config_of "$graph")" --backend jack --jack_server "$server" \
      --jack_client_name aers-bench --stats_file "$stats" --stats_interval_ms 200 \
      --log_level warn >"$tmp/aersd-$period-$graph.log" 2>&1 &
    aersd_pid=$!
    wait_for 30 json "$stats" 'sys.exit(0 if d["running"] and d["dsp_us"]["periods"] > 0 else 1)' || {
      cat "$tmp/aersd-$period-$graph.log" >&2; exit 1; }
    JACK_DEFAULT_SERVER=$server jack_connect system:capture_1 aers-bench:in_1 >/dev/null 2>&1 || true
    JACK_DEFAULT_SERVER=$server jack_connect system:capture_2 aers-bench:in_2 >/dev/null 2>&1 || true
    sleep 2  # warm-up: caches, first plan adoption, connections settle
    kill -USR1 "$aersd_pid"
    load=$("$probe" load --server "$server" --seconds "$seconds")
    sleep 0.3  # one more stats write after the window
    cp "$stats" "$tmp/final.json"
    kill -TERM "$aersd_pid"
    wait "$aersd_pid" || { echo "aersd failed:" >&2; cat "$tmp/aersd-$period-$graph.log" >&2; exit 1; }
    aersd_pid=""
    budget=$(/usr/bin/python3 -c "print(f'{$period / 48000 * 1e6:.0f}')")
    row=$(/usr/bin/python3 - "$tmp/final.json" "$load" "$period" "$graph" "$budget" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); load = json.loads(sys.argv[2])
dsp = d["dsp_us"]
print(f"{sys.argv[3]:>6} {sys.argv[4]:>9} {sys.argv[5]:>7} {dsp['mean']:>9.1f} {dsp['p99']:>9.1f} "
      f"{dsp['max']:>9.1f} {dsp['periods']:>8} {load['cpu_load_mean']:>8.2f} "
      f"{load['cpu_load_max']:>8.2f} {load['xruns']:>6}")
EOF
)
    results+=("$row")
    echo "$row" >&2
  done
  kill -TERM "$jackd_pid"; wait "$jackd_pid" || true; jackd_pid=""
done

echo
echo "aersd DSP time per period under jackd -R -d dummy -r 48000 (${seconds} s per run)"
printf '%6s %9s %7s %9s %9s %9s %8s %8s %8s %6s\n' period graph budget mean_us p99_us max_us \
  periods load_%  maxld_% xruns
for r in "${results[@]}"; do echo "$r"; done

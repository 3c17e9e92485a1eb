#!/usr/bin/env bash
# Control-plane figures in one run, with jack_connect + jack_disconnect as the
# baseline (the stock way to change a route on a JACK host):
#   * round trip of SetParameter and Connect/Disconnect over the Unix socket
#     (p50, p99, max over --calls calls on one channel)
#   * sustained edits per second at 64 frames; the xruns jackd counted and
#     aersd's periods over budget during them, against as long with no edits
#     just before (xruns then are the host's own)
#   * idle RSS of aersd
#   * the floor of those round trips on this machine, same run: GetStatus and
#     SetParameter against floor_server (tests/bench/floor_server.cc), a
#     server whose edit is a journal-sized write and flush and nothing else,
#     before and after aersd's phases; aersd's p50 over the floor's
#
#   tests/bench/control_bench.sh [--build DIR] [--calls N] [--seconds S] [--baseline N] [--audit]
#
# --audit runs aersd with an audit log (--audit_log in the run's directory):
# every edit then also writes and flushes its audit record.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
calls=10000
seconds=10
baseline=200
audit_args=()
floor_flushes=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --audit) audit_args=(--audit_log AUDIT); floor_flushes=2; shift ;;
    *) echo "usage: $0 [--build DIR] [--calls N] [--seconds S] [--baseline N] [--audit]" >&2; exit 2 ;;
  esac
done
aersd=$build/daemon/aersd
aersctl=$build/client/aersctl
bench=$build/tests/bench/control_bench
floor=$build/tests/bench/floor_server
for b in "$aersd" "$aersctl" "$bench" "$floor"; do
  [[ -x $b ]] || { echo "missing $b (ninja -C $build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
server=aers-bench-$$
pids=()
cleanup() {
  # Newest first, each waited for: jackd exits last, once its clients are
  # gone, and takes its entry out of JACK's server registry (eight slots).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

jackd -R -n "$server" -d dummy -r 48000 -p 64 >"$tmp/jackd.log" 2>&1 &
pids+=($!)
export JACK_DEFAULT_SERVER=$server
for _ in $(seq 100); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$tmp/bench.yaml" <<'YAML'
version: 1
engine: {sample_rate_hz: 48000, period_frames: 64}
backend: {type: jack, jack: {client_name: aers-bench}}
outputs: [{name: out, channels: 1}]
nodes:
  - {name: src, kind: tone, params: {freq_hz: 440, level_db: -12}}
  - {name: trim, kind: gain}
  - {name: spare, kind: gain, params: {gain_db: -12}}
  # One per client of the 20-client mixed phase (its own route to toggle).
  - {name: lane0, kind: gain, params: {gain_db: -40}}
  - {name: lane1, kind: gain, params: {gain_db: -40}}
  - {name: lane2, kind: gain, params: {gain_db: -40}}
  - {name: lane3, kind: gain, params: {gain_db: -40}}
  - {name: lane4, kind: gain, params: {gain_db: -40}}
  - {name: lane5, kind: gain, params: {gain_db: -40}}
  - {name: lane6, kind: gain, params: {gain_db: -40}}
  - {name: lane7, kind: gain, params: {gain_db: -40}}
  - {name: lane8, kind: gain, params: {gain_db: -40}}
  - {name: lane9, kind: gain, params: {gain_db: -40}}
  - {name: lane10, kind: gain, params: {gain_db: -40}}
  - {name: lane11, kind: gain, params: {gain_db: -40}}
  - {name: lane12, kind: gain, params: {gain_db: -40}}
  - {name: lane13, kind: gain, params: {gain_db: -40}}
  - {name: lane14, kind: gain, params: {gain_db: -40}}
  - {name: lane15, kind: gain, params: {gain_db: -40}}
  - {name: lane16, kind: gain, params: {gain_db: -40}}
  - {name: lane17, kind: gain, params: {gain_db: -40}}
  - {name: lane18, kind: gain, params: {gain_db: -40}}
  - {name: lane19, kind: gain, params: {gain_db: -40}}
routes:
  - {from: src, to: trim}
  - {from: trim, to: out}
  - {from: spare, to: out}
  - {from: lane0, to: out}
  - {from: lane1, to: out}
  - {from: lane2, to: out}
  - {from: lane3, to: out}
  - {from: lane4, to: out}
  - {from: lane5, to: out}
  - {from: lane6, to: out}
  - {from: lane7, to: out}
  - {from: lane8, to: out}
  - {from: lane9, to: out}
  - {from: lane10, to: out}
  - {from: lane11, to: out}
  - {from: lane12, to: out}
  - {from: lane13, to: out}
  - {from: lane14, to: out}
  - {from: lane15, to: out}
  - {from: lane16, to: out}
  - {from: lane17, to: out}
  - {from: lane18, to: out}
  - {from: lane19, to: out}
YAML
# The floor of a durable edit on this machine, in the same run: GetStatus
# and SetParameter against floor_server (the same gRPC server set-up; its
# edit is a 4 KiB record written and flushed, nothing else). Run before and
# after aersd's phases, as the VM's speed drifts. With --audit, two records
# and two flushes an edit (the audit log's and the journal's), as aersd.
run_floor() {
  local out=$1 fpid
  "$floor" --socket "$tmp/floor.sock" --disk "$tmp" --flushes "$floor_flushes" &
  fpid=$!
  for _ in $(seq 100); do [[ -S $tmp/floor.sock ]] && break; sleep 0.05; done
  "$bench" --socket "$tmp/floor.sock" --calls "$calls" --pid "$fpid" --unary-only >"$out"
  kill "$fpid"
  wait "$fpid" || true
  rm -f "$tmp/floor.sock"
}
echo "== floor_server over a Unix socket ($calls calls on one channel; before aersd)"
run_floor "$tmp/floor1.out"
cat "$tmp/floor1.out"

sock=$tmp/aersd.sock
AERS_JACK_SERVER=$server "$aersd" --config "$tmp/bench.yaml" --socket "$sock" \
  --state_file "$tmp/state.yaml" "${audit_args[@]/AUDIT/$tmp/audit.jsonl}" >"$tmp/aersd.log" 2>&1 &
aersd_pid=$!
pids+=($aersd_pid)
for _ in $(seq 100); do "$aersctl" --socket "$sock" health >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$aersd_pid/status")
xruns_before=$("$aersctl" --socket "$sock" status --json | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin).get("xruns", 0))')

echo "== aersd over its Unix socket ($calls calls on one channel)"
"$bench" --socket "$sock" --calls "$calls" --seconds "$seconds" --pid "$aersd_pid" --disk "$tmp" |
  tee "$tmp/bench.out"
xruns_after=$("$aersctl" --socket "$sock" status --json | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin).get("xruns", 0))')

echo "== floor_server again (after aersd)"
run_floor "$tmp/floor2.out"
cat "$tmp/floor2.out"

echo "== baseline: jack_connect + jack_disconnect ($baseline pairs, same server)"
jack_connect aers-bench:out system:playback_1 2>/dev/null || true
jack_disconnect aers-bench:out system:playback_1 2>/dev/null || true
/usr/bin/python3 - "$baseline" <<'PY' | tee "$tmp/baseline.out"
import subprocess, sys, time
n = int(sys.argv[1])
pairs = []
for _ in range(n):
    t0 = time.monotonic()
    subprocess.run(["jack_connect", "aers-bench:out", "system:playback_1"], check=True)
    subprocess.run(["jack_disconnect", "aers-bench:out", "system:playback_1"], check=True)
    pairs.append((time.monotonic() - t0) * 1e6)
pairs.sort()
p = lambda q: pairs[min(len(pairs) - 1, int(q * len(pairs)))]
print(f"jack_connect+jack_disconnect   n={n}  p50 {p(0.5):8.1f} us  p99 {p(0.99):8.1f} us  "
      f"max {pairs[-1]:8.1f} us")
print(f"BASELINE_P50_US={p(0.5):.1f}")
PY

p50_of() { sed -n "s/^$1=//p" "$2"; }
/usr/bin/python3 - "$(p50_of READ_P50_US "$tmp/bench.out")" "$(p50_of SETPARAM_P50_US "$tmp/bench.out")" \
  "$(p50_of READ_P50_US "$tmp/floor1.out")" "$(p50_of SETPARAM_P50_US "$tmp/floor1.out")" \
  "$(p50_of READ_P50_US "$tmp/floor2.out")" "$(p50_of SETPARAM_P50_US "$tmp/floor2.out")" \
  >"$tmp/floor.summary" <<'PY'
import sys
read, setp, fr1, fs1, fr2, fs2 = map(float, sys.argv[1:])
fr, fs = min(fr1, fr2), min(fs1, fs2)
print(f"GetStatus p50: aersd {read:.0f} us, floor_server {fr1:.0f} / {fr2:.0f} us -> aersd / floor {read / fr:.2f}x")
print(f"SetParameter p50: aersd {setp:.0f} us, floor_server {fs1:.0f} / {fs2:.0f} us -> aersd / floor {setp / fs:.2f}x "
      f"(aersd adds {setp - fs:.0f} us)")
verdict = "MET" if setp < 300 else "MISSED"
floor_note = (f"the floor itself is at or above 300 us here: not reachable on this machine"
              if fs >= 300 else f"the floor is {fs:.0f} us: {300 - fs:.0f} us left for aersd's own work")
print(f"target: SetParameter p50 < 300 us, one client: {setp:.0f} us -> {verdict} ({floor_note})")
PY
pair_p50=$(sed -n 's/^PAIR_P50_US=//p' "$tmp/bench.out")
base_p50=$(sed -n 's/^BASELINE_P50_US=//p' "$tmp/baseline.out")
echo "== summary"
echo "idle RSS of aersd: $((rss_kb / 1024)) MiB ($rss_kb kB)"
cat "$tmp/floor.summary"
echo "xruns during the benchmark (64 frames, jackd -R): $((xruns_after - xruns_before))"
/usr/bin/python3 -c "print(f'route change round trip: aersd Connect+Disconnect p50 {float(\"$pair_p50\"):.0f} us vs jack_connect+jack_disconnect p50 {float(\"$base_p50\"):.0f} us -> {float(\"$base_p50\")/float(\"$pair_p50\"):.1f}x faster')"

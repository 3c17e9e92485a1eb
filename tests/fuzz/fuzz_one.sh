#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz/ and prints one summary line
#   RESULT <target> execs=N cov=N ft=N corpus=N new=N crashes=N seconds=N
# Used by run.sh and by the meson tests (suites fuzz and fuzz-regress).
#
#   fuzz_one.sh [--fresh] [--merge] BINARY WORKDIR    fuzz
#   fuzz_one.sh --regress BINARY WORKDIR              every seed once, no fuzzing
#
# The seed corpus tests/fuzz/corpus/<target>/ is only read: new inputs go to
# WORKDIR/corpus (kept between runs unless --fresh), crash/leak/timeout/OOM
# inputs to WORKDIR/artifacts (or $AERS_FUZZ_ARTIFACTS). --merge adds the
# working corpus inputs that bring new coverage back to the seed corpus (the
# only way this script writes into the source tree).
#
# Environment: AERS_FUZZ_SECONDS (default 60), AERS_FUZZ_ARGS (extra libFuzzer
# flags), AERS_SOURCE_ROOT (default: this script's ../..).
# Exit status: 0 no crash; 1 a crash (or the fuzzer failed); 2 usage.
set -uo pipefail
# The braces make bash read the whole script before running any of it, so
# editing it during a long run does not change what the run executes.
{
fresh=0 merge=0 regress=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --fresh) fresh=1 ;;
    --merge) merge=1 ;;
    --regress) regress=1 ;;
    *) echo "fuzz_one.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -ne 2 ]]; then
  echo "usage: fuzz_one.sh [--fresh] [--merge] [--regress] BINARY WORKDIR" >&2
  exit 2
fi
bin=$1 work=$2
target=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
src=${AERS_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
seeds=$src/tests/fuzz/corpus/$target
seconds=${AERS_FUZZ_SECONDS:-60}

# Per-target settings: the longest input worth trying (bytes), a dictionary.
dict=
case $target in
  config_fuzz) max_len=16384; dict=$src/tests/fuzz/yaml.dict ;;
  manifest_fuzz) max_len=8192; dict=$src/tests/fuzz/yaml.dict ;;
  minisign_fuzz) max_len=2048; dict=$src/tests/fuzz/minisign.dict ;;
  elf_fuzz) max_len=4096; dict=$src/tests/fuzz/elf.dict ;;
  control_fuzz) max_len=4096 ;;
  eq_apo_fuzz) max_len=4096; dict=$src/tests/fuzz/eq_apo.dict ;;
  *) echo "fuzz_one.sh: unknown target '$target'" >&2; exit 2 ;;
esac
[[ -x $bin ]] || { echo "fuzz_one.sh: $bin is not built" >&2; exit 1; }
[[ -d $seeds ]] || { echo "fuzz_one.sh: no seed corpus $seeds" >&2; exit 1; }

# Sanitizers: a report ends the run (libFuzzer saves the input); leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

mkdir -p "$work"
log=$work/fuzz.log

if [[ $regress -eq 1 ]]; then
  mapfile -t inputs < <(find "$seeds" -type f | sort)
  if [[ ${#inputs[@]} -eq 0 ]]; then
    echo "RESULT $target regress: no inputs"
    exit 77
  fi
  "$bin" -rss_limit_mb=2560 -timeout=25 "${inputs[@]}" >"$log" 2>&1
  rc=$?
  if [[ $rc -ne 0 ]]; then
    tail -n 60 "$log"
    echo "RESULT $target regress: FAILED on one of ${#inputs[@]} inputs (exit $rc; log $log)"
    exit 1
  fi
  echo "RESULT $target regress: ${#inputs[@]} inputs ok"
  exit 0
fi

corpus=$work/corpus
artifacts=${AERS_FUZZ_ARTIFACTS:-$work/artifacts}
[[ $fresh -eq 1 ]] && rm -rf "$corpus"
mkdir -p "$corpus" "$artifacts"
stamp=$work/.start
: >"$stamp"

args=(-max_total_time="$seconds" -max_len="$max_len" -timeout=25 -rss_limit_mb=2560
      -print_final_stats=1 -artifact_prefix="$artifacts/" -report_slow_units=30)
[[ -n $dict && -f $dict ]] && args+=(-dict="$dict")
# shellcheck disable=SC2206  # word splitting of the extra flags is the point
[[ -n ${AERS_FUZZ_ARGS:-} ]] && args+=(${AERS_FUZZ_ARGS})

start=$(date +%s)
# The first directory receives new inputs; the seeds are only read.
timeout --kill-after=30 $((seconds + 300)) "$bin" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1
rc=$?
took=$(($(date +%s) - start))

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
crashes=$(find "$artifacts" -maxdepth 1 -type f -newer "$stamp" \
  \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
ncorpus=$(find "$corpus" -type f | wc -l)

if [[ $rc -ne 0 ]]; then
  # The sanitizer or libFuzzer report and where the input went (without
  # libFuzzer's progress lines).
  grep -v '^#[0-9]' "$log" | tail -n 80
  [[ $crashes -eq 0 ]] && crashes=1  # failed without an artifact (e.g. killed)
fi
echo "RESULT $target execs=${execs:-0} cov=${cov:-0} ft=${ft:-0} corpus=$ncorpus" \
  "new=${new:-0} crashes=$crashes seconds=$took exit=$rc artifacts=$artifacts log=$log"

if [[ $merge -eq 1 && $rc -eq 0 ]]; then
  before=$(find "$seeds" -type f | wc -l)
  "$bin" -merge=1 -max_len="$max_len" -timeout=25 "$seeds" "$corpus" >"$work/merge.log" 2>&1 ||
    { echo "fuzz_one.sh: merge failed (log $work/merge.log)" >&2; exit 1; }
  echo "MERGE $target: $(($(find "$seeds" -type f | wc -l) - before)) inputs added to $seeds"
fi
[[ $rc -eq 0 ]]
exit
}

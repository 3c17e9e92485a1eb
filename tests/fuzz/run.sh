#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz/ (clang, ASan+UBSan) and fuzzes
# each one in turn, then prints executions, coverage and crashes per target.
#
#   tests/fuzz/run.sh [--merge] [--fresh] [--jobs N] [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  default 600
#   TARGET              config_fuzz manifest_fuzz minisign_fuzz elf_fuzz control_fuzz eq_apo_fuzz
#                       (default: all)
#   --fresh             start from the seed corpus (drop the working corpus)
#   --merge             afterwards, add the inputs that bring new coverage to
#                       tests/fuzz/corpus/<target>/ (otherwise nothing in the
#                       source tree changes)
#   --jobs N            ninja jobs for the build (default: all cores)
#
# Working corpora, logs and crash inputs live in build-fuzz/fuzz-work/<target>/
# (crash-*, leak-*, timeout-*, oom-* in .../artifacts/). Reproduce a crash
# with  build-fuzz/tests/fuzz/<target> <artifact>. Exits 1 if any target
# crashed. Run it niced on a shared machine: nice -n 15 tests/fuzz/run.sh 300
set -uo pipefail
# The braces make bash read the whole script before running any of it, so
# editing it during a long run does not change what the run executes.
{
cd "$(dirname "$0")/../.."

all_targets=(config_fuzz manifest_fuzz minisign_fuzz elf_fuzz control_fuzz eq_apo_fuzz)
flags=() targets=() seconds=600 jobs=$(nproc)
while [[ $# -gt 0 ]]; do
  case $1 in
    --merge | --fresh) flags+=("$1") ;;
    --jobs) jobs=$2; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    [0-9]*) seconds=$1 ;;
    *_fuzz) targets+=("$1") ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")

build=build-fuzz
if [[ ! -f $build/build.ninja ]]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbenchmarks=false -Dwerror=false >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log"; exit 1; }
fi
ninja -C "$build" -j"$jobs" "${targets[@]/#/tests/fuzz/}" || exit 1

results=() status=0
for t in "${targets[@]}"; do
  echo "== $t: fuzzing for $seconds s"
  out=$(AERS_FUZZ_SECONDS=$seconds tests/fuzz/fuzz_one.sh "${flags[@]}" "$build/tests/fuzz/$t" \
    "$build/fuzz-work/$t")
  rc=$?
  echo "$out" | grep -v '^RESULT'
  results+=("$(echo "$out" | grep '^RESULT')")
  [[ $rc -ne 0 ]] && status=1
done

echo
printf '%-14s %12s %7s %8s %7s %8s\n' target execs cov ft corpus crashes
for r in "${results[@]}"; do
  declare -A f=()
  for kv in $r; do [[ $kv == *=* ]] && f[${kv%%=*}]=${kv#*=}; done
  set -- $r
  printf '%-14s %12s %7s %8s %7s %8s\n' "$2" "${f[execs]:-?}" "${f[cov]:-?}" "${f[ft]:-?}" \
    "${f[corpus]:-?}" "${f[crashes]:-?}"
  [[ ${f[crashes]:-1} != 0 ]] && echo "  crash inputs: ${f[artifacts]}  (log: ${f[log]})"
  unset f
done
exit $status
}

#!/usr/bin/env bash
# Installs dependencies, builds and runs every test AERS has:
#   build/       release-style build: unit, stress and integration suites
#   build-tsan/  ThreadSanitizer: the real-time stress, engine, control and plugin
#                tests (LV2 nodes with their service thread among them)
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: unit, stress and
#                plugin tests
#   build-arm64/ cross-built for arm64 (cross/aarch64-linux-gnu.ini), the unit
#                suite under qemu-user (scripts/arm64-check.sh)
#   build-fuzz/  clang, libFuzzer + ASan/UBSan: aersd and aersctl built with
#                clang's thread-safety analysis as errors (the lock
#                annotations, docs/threads.md), then each parser fuzz target
#                (tests/fuzz/) for $AERS_FUZZ_SECONDS (default 30) from its
#                seed corpus; one test per target, failed by any crash
# Ends with one line "tests: N passed, N failed" summed over all of them, and
# exits non-zero if anything failed.
#
#   scripts/test.sh [--no-deps] [--no-sanitizers] [--no-fuzz] [--no-arm64] [--no-summary]
# (--no-sanitizers skips the fuzz stage too.)
set -uo pipefail
cd "$(dirname "$0")/.."

deps=1
arm64=1
sanitizers=1
fuzz=1
summary_line=1
for arg in "$@"; do
  case $arg in
    --no-deps) deps=0 ;;
    --no-sanitizers) sanitizers=0 ;;
    --no-fuzz) fuzz=0 ;;
    --no-arm64) arm64=0 ;;
    --no-summary) summary_line=0 ;;
    *) echo "usage: scripts/test.sh [--no-deps] [--no-sanitizers] [--no-fuzz] [--no-arm64] [--no-summary]" >&2
       exit 2 ;;
  esac
done

if [[ $deps -eq 1 ]]; then
  scripts/install-deps.sh || exit 1
  if [[ $arm64 -eq 1 ]]; then scripts/install-deps.sh --arm64 || exit 1; fi
fi

jobs=${AERS_BUILD_JOBS:-$(nproc)}
failed_setup=0

setup() {  # setup DIR [meson options...]: warnings are errors unless the caller says
  local dir=$1; shift
  local werror=(-Dwerror=true)
  [[ " $* " == *" -Dwerror="* ]] && werror=()
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" "${werror[@]}" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
}

run_suite() {  # run_suite DIR TARGETS... -- MESON_TEST_ARGS...
  local dir=$1; shift
  local targets=()
  while [[ $# -gt 0 && $1 != -- ]]; do targets+=("$1"); shift; done
  shift
  ninja -C "$dir" -j"$jobs" "${targets[@]}" || return 1
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --no-rebuild --print-errorlogs "$@"
}

# Each stage's wall time, for the log ("== stage: N s").
stage_start=0  # $SECONDS counts from the start of the script
stage_done() { echo "== $1: $((SECONDS - stage_start)) s"; stage_start=$SECONDS; }

status=0
stage_done "dependencies"
setup build || failed_setup=1
if [[ $failed_setup -eq 0 ]]; then
  run_suite build -- || status=1
fi
stage_done "build/ (build and tests)"

# What a packager builds (debian/rules): release, the project's default
# warning flags (warnings stay warnings), no tests or benchmarks. It must
# build; the tests are the ones above.
if setup build-packager --buildtype=release -Dwerror=false -Dtests=false -Dbenchmarks=false; then
  ninja -C build-packager -j"$jobs" || status=1
  rm -f build-packager/meson-logs/testlog.json
else
  failed_setup=1
fi
stage_done "build-packager/ (build)"

if [[ $arm64 -eq 1 ]]; then
  AERS_BUILD_JOBS=$jobs scripts/arm64-check.sh build-arm64 || status=1
else
  rm -f build-arm64/meson-logs/testlog.json
fi
stage_done "build-arm64/ (build and unit tests under qemu)"

if [[ $sanitizers -eq 1 ]]; then
  if setup build-tsan -Db_sanitize=thread -Dbuildtype=debugoptimized -Db_lundef=false \
      -Dbenchmarks=false; then
    # Debian's libprotobuf is not built with TSan and its map fields change
    # layout under -fsanitize=thread (map_field.h): tests that touch
    # protobuf maps run in the other builds only. Debian's abseil is not
    # built with TSan either, so TSan cannot see absl::Mutex ordering
    # accesses (its lock is atomics inside the uninstrumented library): a
    # test whose threads meet only through an absl::Mutex (engine state
    # read by one thread while another edits) is reported falsely and runs
    # in the other builds only (docs/threads.md, "Checked by").
    # The parameter-stream tests (a committer thread meeting the test's
    # thread through GraphService's absl::Mutex) are of that kind.
    GTEST_FILTER="-RequestCheck.*:ServerTest.*:AlsaBackendTest.ChannelCountChanges*:ServiceTest.Streamed*:ServiceTest.AnEditAfterStreamed*" \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      run_suite build-tsan tests/engine_stress_test tests/engine_test tests/control_test \
      tests/security_test tests/ring_test tests/runner_test tests/null_backend_test \
      tests/alsa_backend_test tests/plugin_test tests/meter_test daemon/plugin/aers-plugin -- \
      engine_stress engine control security ring runner null_backend alsa_backend plugin meter \
      || status=1
  else
    failed_setup=1
  fi
  stage_done "build-tsan/ (build and tests)"
  if setup build-asan -Db_sanitize=address,undefined -Dbuildtype=debug -Db_lundef=false \
      -Dbenchmarks=false; then
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
      run_suite build-asan daemon/aersd daemon/libexec/aersd client/aersctl tests/config_test tests/dsp_test tests/crossover_test tests/volume_test \
      tests/dynamics_test tests/dither_test tests/eq_apo_test tests/convolver_test tests/peq_test tests/meter_test \
      tests/engine_test tests/render_test tests/render_io_test tests/robustness_test tests/engine_stress_test \
      tests/control_test tests/security_test tests/model_test tests/initial_graph_test \
      tests/null_backend_test tests/ring_test tests/runner_test tests/plan_builder_test \
      tests/grpc_adapter_test tests/housekeeping_test tests/stall_watch_test tests/alsa_format_test \
      tests/alsa_backend_test \
      tests/aersctl_plugin_test tests/plugin_test daemon/plugin/aers-plugin -- \
      --suite unit --suite stress --suite plugin || status=1
  else
    failed_setup=1
  fi
  stage_done "build-asan/ (build and tests)"
fi

if [[ $sanitizers -eq 1 ]]; then
  # The clang tree: the daemon and aersctl compile with -Werror=thread-safety
  # (meson.build), then one fuzz target at a time (is_parallel false), each
  # bounded by AERS_FUZZ_SECONDS; crash inputs land in
  # build-fuzz/tests/fuzz/work/*/artifacts.
  if CC=clang CXX=clang++ setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
      -Db_lundef=false -Dbenchmarks=false -Dwerror=false; then
    if [[ $fuzz -eq 1 ]]; then
      AERS_FUZZ_SECONDS=${AERS_FUZZ_SECONDS:-30} \
        run_suite build-fuzz daemon/aersd daemon/libexec/aersd client/aersctl tests/fuzz/config_fuzz \
        tests/fuzz/manifest_fuzz tests/fuzz/minisign_fuzz tests/fuzz/elf_fuzz \
        tests/fuzz/control_fuzz tests/fuzz/eq_apo_fuzz -- --suite fuzz || status=1
    else
      ninja -C build-fuzz -j"$jobs" daemon/aersd daemon/libexec/aersd client/aersctl || status=1
      rm -f build-fuzz/meson-logs/testlog.json
    fi
  else
    failed_setup=1
  fi
else
  # Not run: an older build-fuzz result must not count in the summary.
  rm -f build-fuzz/meson-logs/testlog.json
fi
stage_done "build-fuzz/ (build and fuzzing)"

if [[ $summary_line -eq 1 ]]; then
  scripts/test-summary.sh "$failed_setup" "$status"
else
  [[ $failed_setup -eq 0 ]]
fi
summary=$?
[[ $status -ne 0 || $summary -ne 0 ]] && exit 1
exit 0

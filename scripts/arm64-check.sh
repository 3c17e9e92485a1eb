#!/usr/bin/env bash
# arm64 (aarch64) on an amd64 Debian 12 host: cross-builds aersd and the unit
# tests with Debian's cross toolchain and multiarch :arm64 libraries
# (cross/aarch64-linux-gnu.ini), then runs the unit suite (DSP kernels,
# denormal flushing via FPCR.FZ, the engine, offline render through the arm64
# aersd, config, control plane units) under qemu-user.
#
# Test programs that start other programs (render_test runs aersd,
# aersctl_plugin_test runs aersctl) exec arm64 binaries themselves, so qemu is
# registered with binfmt_misc (needs root; done here when missing, from
# qemu-user-binfmt's /usr/lib/binfmt.d/qemu-aarch64.conf). Checks that the
# biquad cascade kernel is NEON code; prints the time each stage took.
#
#   scripts/arm64-check.sh [BUILD_DIR] [-- MESON_TEST_ARGS...]   (default: build-arm64)
# Needs scripts/install-deps.sh --arm64 first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=build-arm64
if [[ $# -gt 0 && $1 != -- ]]; then dir=$1; shift; fi
[[ ${1:-} == -- ]] && shift
jobs=${AERS_BUILD_JOBS:-$(nproc)}
fail() { echo "arm64-check: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

for tool in meson ninja protoc grpc_cpp_plugin aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || fail "$tool missing (scripts/install-deps.sh --arm64)"
done
[[ -e /lib/ld-linux-aarch64.so.1 ]] || fail "libc6:arm64 missing (scripts/install-deps.sh --arm64)"

# binfmt_misc: an arm64 ELF started by any process runs under qemu-aarch64.
binfmt=/proc/sys/fs/binfmt_misc
if [[ ! -e $binfmt/qemu-aarch64 ]]; then
  [[ $(id -u) -eq 0 ]] || fail "qemu-aarch64 is not registered with binfmt_misc and this is not root"
  [[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc "$binfmt" \
    || fail "cannot mount binfmt_misc at $binfmt"
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [[ -f $conf ]] || fail "$conf missing (apt-get install qemu-user-binfmt)"
  grep -v '^#' "$conf" | head -n1 > "$binfmt/register" || fail "binfmt registration of $conf refused"
  echo "registered qemu-aarch64 with binfmt_misc ($conf)"
fi

t0=$(date +%s)
if [[ ! -f $dir/build.ninja ]]; then
  step "meson setup $dir (cross: cross/aarch64-linux-gnu.ini)"
  meson setup "$dir" --cross-file cross/aarch64-linux-gnu.ini -Dwerror=true \
    -Dbenchmarks=false > "$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; fail "meson setup"; }
fi
step "build (ninja -j$jobs)"
# (In a variable first: a failing lookup must fail the script. build.ninja
# first: introspection reads what the last regeneration wrote.)
ninja -C "$dir" build.ninja > /dev/null || fail "meson regeneration of $dir"
unit_targets=$(/usr/bin/python3 - "$dir" <<'PY'
# The unit suite's programs and what they depend on (plugins they load,
# aersd and aersctl they start), as build-relative ninja targets.
import json, os, subprocess, sys
build = os.path.realpath(sys.argv[1])
intro = lambda what: json.loads(subprocess.run(
    ["meson", "introspect", build, what], check=True, capture_output=True, text=True).stdout)
files = {t["id"]: t["filename"] for t in intro("--targets")}
for t in intro("--tests"):
    if not any(s.split(":")[-1] == "unit" for s in t["suite"]):
        continue
    for path in [t["cmd"][0]] + [f for d in t["depends"] for f in files.get(d, [])]:
        path = os.path.realpath(path)
        if path.startswith(build + "/"):
            print(os.path.relpath(path, build))
PY
) || fail "meson introspect of $dir"
mapfile -t targets < <(printf '%s\n' daemon/aersd daemon/libexec/aersd client/aersctl $unit_targets | sort -u)
[[ ${#targets[@]} -gt 10 ]] || fail "only ${#targets[@]} targets found for the unit suite"
ninja -C "$dir" -j"$jobs" "${targets[@]}"
t1=$(date +%s)
file -b "$dir/daemon/aersd" | grep -q "ARM aarch64" || fail "$dir/daemon/aersd is not an arm64 program"

step "unit suite under qemu-aarch64"
rm -f "$dir/meson-logs/testlog.json"
status=0
# Tests that only move gigabytes through libsndfile skip under emulation.
AERS_TEST_EMULATED=qemu-aarch64 \
  meson test -C "$dir" --no-rebuild --print-errorlogs --suite unit "$@" || status=1
t2=$(date +%s)
# The biquad cascade kernel (rt/biquad.cc, PairKernel and its PairKernelN<K>
# bodies, which the compiler may inline into it): on arm64 there is one build
# of it (no ifunc clones), its two-channel double vectors in NEON registers
# with fused multiply-adds (fmla vN.2d, -ffp-contract=fast).
step "biquad kernel on arm64"
neon=$(aarch64-linux-gnu-objdump -d --no-show-raw-insn -C "$dir/daemon/rt/libaers_rt.a" |
  awk '/^[0-9a-f]+ <.*PairKernel[N(<]/ {k = 1; next} /^[0-9a-f]+ </ {k = 0} k && /fmla\tv[0-9]+\.2d/ {n++}
       END {print n + 0}')
echo "PairKernel: $neon NEON fmla .2d instructions"
[[ $neon -gt 0 ]] || { echo "arm64-check: the cascade kernel has no NEON FMA" >&2; status=1; }
echo "arm64-check: build $((t1 - t0)) s, tests $((t2 - t1)) s"
exit "$status"

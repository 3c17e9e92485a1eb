#!/usr/bin/env bash
# The one list of system packages AERS needs on Debian 12 (bookworm).
# Idempotent; run as root. Used by the README, .ci/run, the Containerfile
# and .gitlab-ci.yml.
#
#   scripts/install-deps.sh            build + runtime + test packages
#   scripts/install-deps.sh --runtime  only what the installed daemon needs
#   scripts/install-deps.sh --arm64    the build set plus the arm64 cross
#                                      build and qemu-user (scripts/arm64-
#                                      check.sh): adds the arm64 dpkg
#                                      architecture
set -euo pipefail

build_pkgs=(
  build-essential meson ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libjack-jackd2-dev libasound2-dev libyaml-cpp-dev libsodium-dev
  libabsl-dev libspdlog-dev libsystemd-dev libsndfile1-dev
  libebur128-dev   # EBU R128 loudness in the meter node (daemon/dsp/meter.cc)
  libgtest-dev libgmock-dev libbenchmark-dev ladspa-sdk nlohmann-json3-dev libssl-dev
  liblilv-dev lv2-dev
  # convolver: FFT (BSD-3-Clause) and IR resampling (BSD-2-Clause)
  libkissfft-dev libsamplerate0-dev
  scdoc   # man pages (docs/man/*.scd)
)
test_pkgs=(
  jackd2 jack-tools sox python3 python3-grpcio python3-protobuf
  swh-plugins minisign
  # LV2 hosting tests: Debian's LV2 plugins and lilv's own host (lv2apply,
  # lv2bench) as the independent reference
  swh-lv2 mda-lv2 lilv-utils
  # ALSA backend tests (tests/integration/test_alsa.py): the ALSA jack PCM
  # over a private jackd, and aplay/arecord for the docs' examples
  libasound2-plugins alsa-utils
  # convolver references: BruteFIR, jconvolver; FFTW only for the FFT
  # comparison in tests/bench (not linked into aersd)
  brutefir jconvolver libfftw3-dev
  # secrets scan (scripts/static-analysis.sh secrets; CI job "secrets")
  git-secrets
  # libFuzzer targets (tests/fuzz/, build-fuzz/): clang with its sanitizer
  # and fuzzer runtimes (libclang-rt is only a recommendation of clang)
  clang libclang-rt-14-dev libfuzzer-14-dev
)
# Cross build for arm64 (cross/aarch64-linux-gnu.ini): Debian's cross
# toolchain, qemu-user with its binfmt_misc entry, and the :arm64 variants of
# the libraries above (Multi-Arch: same, installed beside the amd64 ones).
arm64_pkgs=(
  crossbuild-essential-arm64 qemu-user qemu-user-binfmt file binutils-aarch64-linux-gnu
  libgrpc++-dev:arm64 libprotobuf-dev:arm64 libjack-jackd2-dev:arm64 libasound2-dev:arm64
  libsodium-dev:arm64 libabsl-dev:arm64 libspdlog-dev:arm64 libsystemd-dev:arm64
  libsndfile1-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libssl-dev:arm64
  liblilv-dev:arm64
  libkissfft-dev:arm64 libsamplerate0-dev:arm64 libebur128-dev:arm64
  # libyaml-cpp-dev is not Multi-Arch: same in bookworm (installing its
  # :arm64 removes the amd64 one): the library only, and a pkg-config file
  # for it written below.
  libyaml-cpp0.7:arm64
)
runtime_pkgs=(
  libgrpc++1.51 libprotobuf32 libjack-jackd2-0 libasound2
  libyaml-cpp0.7 libsodium23 libspdlog1.10 libsystemd0 libsndfile1 libabsl20220623 libssl3
  liblilv-0-0
  libkissfft-float131 libsamplerate0 libebur128-1
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: must run as root (apt-get install)" >&2
  exit 1
fi

want=()
arm64=0
if [[ ${1:-} == --runtime ]]; then
  want=("${runtime_pkgs[@]}")
elif [[ ${1:-} == --arm64 ]]; then
  arm64=1
  # The host's build tools (meson, protoc, grpc_cpp_plugin, scdoc) and the
  # yaml-cpp headers come from the build set.
  want=("${build_pkgs[@]}" "${arm64_pkgs[@]}")
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
else
  want=("${build_pkgs[@]}" "${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
yaml_cpp_pc() {  # the arm64 pkg-config file libyaml-cpp-dev would carry
  local dir=/usr/local/lib/aarch64-linux-gnu
  local version
  version=$(dpkg-query -W -f='${Version}' libyaml-cpp0.7:arm64 | sed 's/[+~-].*//')
  mkdir -p "$dir/pkgconfig"
  ln -sf /usr/lib/aarch64-linux-gnu/libyaml-cpp.so.0.7 "$dir/libyaml-cpp.so"
  cat > "$dir/pkgconfig/yaml-cpp.pc" <<PC
# Written by AERS scripts/install-deps.sh --arm64 (headers: libyaml-cpp-dev:amd64).
Name: Yaml-cpp
Description: A YAML parser and emitter for C++
Version: $version
Libs: -L$dir -lyaml-cpp
Cflags: -I/usr/include
PC
}

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $arm64 -eq 1 ]] && yaml_cpp_pc
  echo "install-deps.sh: all ${#want[@]} packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# jackd2 asks whether to enable realtime priority; answer non-interactively.
echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
[[ $arm64 -eq 1 ]] && yaml_cpp_pc
exit 0

#!/usr/bin/env bash
# Installs dependencies, builds AERS and starts aersd in the foreground on
# configs/default.yaml. With no JACK server running, the default backend
# (auto) falls back to the null backend, so this works with no audio
# hardware. aersctl is built beside it (build-release/client/aersctl).
# Extra arguments go to aersd (e.g. --backend=jack).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [[ ! -f build-release/build.ninja ]]; then
  meson setup build-release --buildtype=release -Dtests=false
fi
ninja -C build-release -j"$(nproc)" daemon/aersd daemon/libexec/aersd client/aersctl
echo "run.sh: aersctl is $PWD/build-release/client/aersctl" \
  "(export PATH=\"$PWD/build-release/client:\$PATH\" to type aersctl)" >&2
exec build-release/daemon/aersd --config configs/default.yaml "$@"

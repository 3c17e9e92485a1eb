#!/usr/bin/env bash
# Builds the Containerfile without any container registry and checks that the
# image's aersd runs. Slow (a Debian bootstrap on first use, then a full
# build): not part of scripts/test.sh. Needs root and the Debian mirror.
#
#   1. debootstrap --variant=minbase bookworm into $AERS_ROOTFS (kept, reused)
#   2. import it as localhost/debian:bookworm (podman import)
#   3. buildah bud --format docker --build-arg BASE=localhost/debian:bookworm
#      -t $AERS_IMAGE .   (Docker format: the OCI format drops HEALTHCHECK)
#   4. the image records a HEALTHCHECK (buildah inspect)
#   5. in a working container of the image (buildah run, chroot isolation):
#        ldd aersd, aersctl            every library found
#        aersd --version               exits 0
#        aersd --help                  prints the usage
#        aersd --backend null          runs the default config, SIGTERM -> exit 0
#        the HEALTHCHECK command       exits 0 against that running daemon
#   6. the test stage (buildah bud --target test): unit and integration
#      suites inside the build image, each test with its own jackd -d dummy
#   7. two containers: jackd in one (the test-stage image, as the uid of the
#      image's user aers), the shipped image's aersd in another, sharing a
#      tmpfs as /dev/shm (jack2's sockets and shared memory): aersd must run
#      at the server's rate and period and its ports be connected to the
#      server's system ports (jack_lsp in the JACK container)
#   8. prints the image sizes
# Layers are cached (--layers): the test stage reuses the build stage.
#
#   scripts/container-check.sh [--rebuild-base] [--no-test-stage]
#   AERS_ROOTFS=/var/tmp/aers-rootfs AERS_IMAGE=aers:test AERS_TEST_IMAGE=aers:test-stage
#   AERS_BUILD_JOBS=2   (logs of the test stage and the two-container test: /tmp/aers-container-check.*)
set -euo pipefail
cd "$(dirname "$0")/.."

rootfs=${AERS_ROOTFS:-/var/tmp/aers-rootfs}
base=localhost/debian:bookworm
image=${AERS_IMAGE:-aers:test}
test_image=${AERS_TEST_IMAGE:-aers:test-stage}
logdir=$(mktemp -d /tmp/aers-container-check.XXXXXX)
jobs=${AERS_BUILD_JOBS:-2}
mirror=${AERS_DEBIAN_MIRROR:-http://deb.debian.org/debian}

rebuild_base=0
test_stage=1
for arg in "$@"; do
  case $arg in
    --rebuild-base) rebuild_base=1 ;;
    --no-test-stage) test_stage=0 ;;
    *) echo "usage: scripts/container-check.sh [--rebuild-base] [--no-test-stage]" >&2; exit 2 ;;
  esac
done

log() { printf '== %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "container-check.sh: must run as root (debootstrap, buildah chroot builds)" >&2
  exit 1
fi

missing=()
for tool in debootstrap:debootstrap buildah:buildah podman:podman; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 1-2. A local Debian 12 base image.
if [[ $rebuild_base -eq 1 ]]; then
  podman rmi -f "$base" >/dev/null 2>&1 || true
  rm -rf "$rootfs"
fi
if ! podman image exists "$base"; then
  if [[ ! -x $rootfs/bin/sh ]]; then
    log "debootstrap bookworm -> $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
  fi
  # What debootstrap downloaded is not part of the base.
  rm -f "$rootfs"/var/cache/apt/archives/*.deb
  rm -rf "$rootfs"/var/lib/apt/lists/*
  log "podman import -> $base"
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
fi

# 3. The image.
log "buildah bud -> $image"
old_id=$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
buildah bud --layers --format docker --isolation chroot --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --build-arg BASE="$base" --build-arg JOBS="$jobs" -t "$image" .
new_id=$(podman image inspect "$image" --format '{{.Id}}')
# The previous build of this tag is now untagged: drop it (only that one).
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi

# 4. The health check survived (an OCI-format build would have dropped it).
log "HEALTHCHECK"
# (buildah 1.28's --format has no json function: read the whole document.)
hc_json=$(buildah inspect --type image "$image" | /usr/bin/python3 -c '
import json, sys
print(json.dumps((json.load(sys.stdin).get("Docker") or {}).get("config", {}).get("Healthcheck")))')
echo "$hc_json"
mapfile -t hc_cmd < <(/usr/bin/python3 -c '
import json, sys
hc = json.loads(sys.argv[1] or "null") or {}
test = hc.get("Test") or []
if not test or test[0] not in ("CMD", "CMD-SHELL"):
    sys.exit("no HEALTHCHECK in the image config")
print("\n".join(test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]))
' "$hc_json") || { echo "FAIL: the image has no HEALTHCHECK (built in OCI format?)" >&2; exit 1; }
[[ ${#hc_cmd[@]} -gt 0 ]] || { echo "FAIL: empty HEALTHCHECK command" >&2; exit 1; }

# 5. Does it run?
ctr=$(buildah from "$image")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
run() { buildah run --isolation chroot "$ctr" -- "$@"; }

log "shared libraries of the installed programs"
run sh -c 'for b in /usr/bin/aersd /usr/libexec/aers/aersd /usr/bin/aersctl; do
  [ -e "$b" ] || continue
  if ldd "$b" | grep "not found"; then echo "FAIL: $b misses libraries" >&2; exit 1; fi
  echo "$b: $(ldd "$b" | wc -l) libraries, all found"
done'

log "aersd --version, and the daemon program's"
run /usr/bin/aersd --version
run /usr/libexec/aers/aersd --version

log "aersd --help"
help=$(run /usr/bin/aersd --help 2>&1 || true)   # absl's --help exits 1
grep -q -- '--config FILE' <<<"$help" || { echo "$help"; echo "FAIL: no usage text" >&2; exit 1; }
echo "usage text ok ($(wc -l <<<"$help") lines)"

log "aersd --backend null, default config, SIGTERM after 3 s"
out=$(run timeout --preserve-status -s TERM 3 /usr/bin/aersd --backend null 2>&1) ||
  { echo "$out"; echo "FAIL: aersd did not exit 0 on SIGTERM" >&2; exit 1; }
echo "$out" | tail -n 4
grep -q 'audio running' <<<"$out" || { echo "FAIL: the graph never ran" >&2; exit 1; }

log "health check against a running daemon: ${hc_cmd[*]}"
# The daemon in the background, the image's own HEALTHCHECK command retried
# until it answers (start-up, mlockall), then SIGTERM: both must succeed.
# shellcheck disable=SC2016  # expanded by the container's shell
out=$(run sh -c '
  /usr/bin/aersd --backend null >/tmp/aersd-health.log 2>&1 & pid=$!
  ok=1
  for i in $(seq 1 50); do
    if "$@"; then ok=0; break; fi
    sleep 0.2
  done
  kill -TERM "$pid"; wait "$pid"; rc=$?
  [ "$ok" -eq 0 ] || { echo "health check never passed; daemon log:"; cat /tmp/aersd-health.log; }
  [ "$rc" -eq 0 ] || { echo "aersd exited $rc"; cat /tmp/aersd-health.log; }
  rm -f /tmp/aersd-health.log
  [ "$ok" -eq 0 ] && [ "$rc" -eq 0 ]' sh "${hc_cmd[@]}" 2>&1) ||
  { echo "$out"; echo "FAIL: the HEALTHCHECK command did not pass against a running aersd" >&2; exit 1; }
echo "$out" | tail -n 3

log "runs as"
run id

if [[ $test_stage -eq 1 ]]; then
  # 6. The suites inside the image.
  log "test stage: buildah bud --target test -> $test_image"
  t0=$(date +%s)
  if ! buildah bud --layers --format docker --isolation chroot --ulimit nofile=8192:8192 \
      --ulimit nproc=4096:4096 --build-arg BASE="$base" --build-arg JOBS="$jobs" \
      --target test -t "$test_image" . > "$logdir/test-stage.log" 2>&1; then
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$logdir/test-stage.log" || true
    tail -n 60 "$logdir/test-stage.log"
    echo "FAIL: the test stage (suites inside the image; log $logdir/test-stage.log)" >&2
    exit 1
  fi
  grep -E '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' "$logdir/test-stage.log"
  echo "test stage: $(( $(date +%s) - t0 )) s"

  # 7. Two containers, one JACK server.
  scripts/container-jack-test.sh "$image" "$test_image"
fi

# 8. Sizes.
log "image size"
for img in "$image" $([[ $test_stage -eq 1 ]] && echo "$test_image"); do
  podman image inspect "$img" --format '{{.Size}}' |
    awk -v name="$img" '{printf "%s: %d bytes (%.1f MB)\n", name, $1, $1 / 1e6}'
done
echo "container-check: OK"

#!/usr/bin/env bash
# Two containers, one JACK server: jackd runs in one container (JACK_IMAGE,
# an image with jackd2 and jack-tools, e.g. the Containerfile's test stage),
# the shipped image's aersd in another (IMAGE). They share a tmpfs as
# /dev/shm, where jack2 keeps its sockets and shared memory (names carry the
# uid: jackd runs as the uid of the image's user aers). Passes when aersd
# reports the backend running at the JACK server's rate and period and
# jack_lsp in the JACK container shows aersd's playback ports connected to the
# server's system ports; aersd must then exit 0 on SIGTERM.
# Containers are buildah working containers (chroot isolation, no daemon).
# Needs root (tmpfs mount).
#
#   scripts/container-jack-test.sh IMAGE JACK_IMAGE
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: scripts/container-jack-test.sh IMAGE JACK_IMAGE" >&2; exit 2; }
image=$1
jack_image=$2
# A server name of this run only (pkill below must not touch another run's).
server=aers-shared-$$
logdir=$(mktemp -d /tmp/aers-container-jack.XXXXXX)
ctr=$(buildah from "$image")
jctr=
jpid=
shm=$(mktemp -d /tmp/aers-shm.XXXXXX)
cleanup() {
  local rc=$?
  set +e
  # (chroot isolation: the container's processes are the host's)
  pkill -TERM -f "jackd --no-realtime -n $server "
  if [[ -n $jpid ]]; then
    kill "$jpid" 2>/dev/null
    wait "$jpid" 2>/dev/null
  fi
  buildah rm "$ctr" $jctr >/dev/null 2>&1
  mountpoint -q "$shm" && umount "$shm"
  rmdir "$shm" 2>/dev/null
  exit "$rc"
}
trap cleanup EXIT
run() { buildah run --isolation chroot "$ctr" -- "$@"; }
echo "== two containers: aersd of $image joins jackd running in a container of $jack_image"
uid=$(run id -u)
gid=$(run id -g)
mount -t tmpfs -o mode=1777,size=256m tmpfs "$shm"
jctr=$(buildah from "$jack_image")
jrun() { buildah run --isolation chroot --user "$uid:$gid" -v "$shm:/dev/shm" "$jctr" -- "$@"; }
jrun jackd --no-realtime -n "$server" -d dummy -r 48000 -p 128 > "$logdir/jackd.log" 2>&1 &
jpid=$!
for _ in $(seq 1 50); do
  jrun jack_lsp -s "$server" > /dev/null 2>&1 && break
  sleep 0.2
done
jrun jack_lsp -s "$server" > /dev/null || { cat "$logdir/jackd.log"
  echo "FAIL: jackd in the JACK container did not start" >&2; exit 1; }
# The daemon container: aersd on the JACK backend, its status printed once
# it runs, then it waits for the host's go-ahead (a file in the shared
# tmpfs) and is stopped with SIGTERM.
buildah run --isolation chroot -v "$shm:/dev/shm" "$ctr" -- sh -c '
  /usr/bin/aersd --backend jack --jack_server "$1" >/tmp/aersd-jack.log 2>&1 & pid=$!
  ok=1
  for i in $(seq 1 100); do
    if /usr/bin/aersctl --socket "$AERS_SOCKET" status >/tmp/status.txt 2>&1 &&
       grep -q "backend jack (running)" /tmp/status.txt; then ok=0; break; fi
    sleep 0.1
  done
  cat /tmp/status.txt
  [ "$ok" -eq 0 ] || cat /tmp/aersd-jack.log
  touch /dev/shm/aers-two-containers-ready
  for i in $(seq 1 300); do [ -e /dev/shm/aers-two-containers-done ] && break; sleep 0.1; done
  kill -TERM "$pid"; wait "$pid"; rc=$?
  [ "$rc" -eq 0 ] || { echo "aersd exited $rc"; cat /tmp/aersd-jack.log; }
  [ "$ok" -eq 0 ] && [ "$rc" -eq 0 ]' sh "$server" > "$logdir/aersd-jack.txt" 2>&1 &
apid=$!
for _ in $(seq 1 150); do [[ -e $shm/aers-two-containers-ready ]] && break; sleep 0.1; done
lsp=$(jrun jack_lsp -s "$server" -c 2>&1 || true)
touch "$shm/aers-two-containers-done"
arc=0
wait "$apid" || arc=$?
sed 's/^/   /' "$logdir/aersd-jack.txt"
[[ $arc -eq 0 ]] || { echo "FAIL: aersd in the image did not run on the shared JACK server" >&2; exit 1; }
grep -q "rate 48000 Hz  period 128 frames" "$logdir/aersd-jack.txt" ||
  { echo "FAIL: aersd does not run at the JACK container's rate and period" >&2; exit 1; }
echo "$lsp" | sed 's/^/   /'
# aersd's playback ports, each followed by the system port it feeds
connected=$(echo "$lsp" | awk '/^aersd:/ {p = 1; next} /^[^ ]/ {p = 0} p && /system:playback_/ {n++} END {print n + 0}')
[[ $connected -ge 2 ]] ||
  { echo "FAIL: aersd's ports are not connected to the JACK container's system ports" >&2; exit 1; }
echo "two containers: aersd (uid $uid) on jackd in another container, $connected playback connections"
echo "container-jack-test: OK (logs: $logdir)"

#!/usr/bin/env bash
# The Debian package, end to end:
#   1. dpkg-buildpackage -b from a clean export of HEAD (offline; tests off,
#      they run in scripts/test.sh);
#   2. lintian on the .deb: any error (E:) fails; warnings are listed;
#   3. a clean debootstrap chroot of bookworm (cached in AERS_DEB_CHROOT,
#      default /var/cache/aers/bookworm-chroot; a fresh copy each run), the
#      .deb installed there with apt (dependencies from Debian), then:
#      the user and directories made by the maintainer scripts, the unit
#      enabled (systemd is not PID 1 in a chroot: enabled, not started),
#      `systemd-analyze verify` on the installed unit, `aersd --version`,
#      `aersctl --help`, man pages, and aersd running on the null backend as
#      user aers with `aersctl status` answering over its socket.
# Prints the package and installed sizes. Needs root (chroot, mounts).
#
#   scripts/deb-check.sh [OUT_DIR]        (default: build-deb/)
#   AERS_DEB=path/aers_*.deb scripts/deb-check.sh   checks that package, no build
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
base=${AERS_DEB_CHROOT:-/var/cache/aers/bookworm-chroot}
jobs=${AERS_BUILD_JOBS:-2}
work=$(mktemp -d /tmp/aers-deb.XXXXXX)
chroot_dir=$work/root
pid=
cleanup() {
  set +e
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  for m in dev/pts dev proc; do
    mountpoint -q "$chroot_dir/$m" 2>/dev/null && umount -l "$chroot_dir/$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "deb-check.sh: must run as root (chroot, mounts)" >&2
  exit 2
fi
for tool in dpkg-buildpackage dh lintian debootstrap; do
  command -v "$tool" >/dev/null || fail "$tool missing (apt-get install debhelper lintian debootstrap dpkg-dev fakeroot)"
done

if [[ -n ${AERS_DEB:-} ]]; then   # check a package built before
  step "package: $AERS_DEB"
  cp "$AERS_DEB" "$work/"
  deb=$work/$(basename "$AERS_DEB")
else
  step "build: dpkg-buildpackage -b from git HEAD"
  t0=$(date +%s)
  git -C "$root" archive --format=tar --prefix=aers/ HEAD | tar -x -C "$work"
  (cd "$work/aers" && DEB_BUILD_OPTIONS="parallel=$jobs nocheck" dpkg-buildpackage -b -us -uc \
    > "$work/build.log" 2>&1) || { tail -40 "$work/build.log"; fail "dpkg-buildpackage"; }
  deb=$(ls "$work"/aers_*.deb)
  mkdir -p "$out"
  cp "$deb" "$work/build.log" "$out/"
  echo "   $(basename "$deb"): $(du -k "$deb" | cut -f1) KiB, built in $(( $(date +%s) - t0 )) s"
fi
mkdir -p "$out"
dpkg-deb --contents "$deb" > "$out/contents.txt"

step "lintian"
lintian_rc=0
lintian --tag-display-limit 0 --info --fail-on error "$deb" > "$out/lintian.txt" 2>&1 || lintian_rc=$?
sed 's/^/   /' "$out/lintian.txt"
errors=$(grep -c '^E:' "$out/lintian.txt" || true)
warnings=$(grep -c '^W:' "$out/lintian.txt" || true)
echo "   lintian: $errors error(s), $warnings warning(s), exit status $lintian_rc"
[[ $errors -eq 0 && $lintian_rc -eq 0 ]] || fail "lintian errors (or lintian failed)"

step "install into a clean bookworm chroot"
if [[ ! -x $base/usr/bin/apt-get ]]; then
  # Into a temporary directory, moved into place only when complete: a
  # bootstrap cut short is never reused.
  mkdir -p "$(dirname "$base")"
  rm -rf "$base.partial"
  debootstrap --variant=minbase bookworm "$base.partial" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  rm -rf "$base"
  mv "$base.partial" "$base"
fi
cp -a "$base" "$chroot_dir"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
mount -t proc proc "$chroot_dir/proc"
mount --bind /dev "$chroot_dir/dev"
mount --bind /dev/pts "$chroot_dir/dev/pts"
cp "$deb" "$chroot_dir/tmp/"
in_chroot() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_chroot apt-get update -q > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt-get update"; }
DEBIAN_FRONTEND=noninteractive in_chroot apt-get install -y -q --no-install-recommends \
  "/tmp/$(basename "$deb")" >> "$work/apt.log" 2>&1 || { tail -30 "$work/apt.log"; fail "apt-get install"; }
cp "$work/apt.log" "$out/"
echo "   installed: $(in_chroot dpkg-query -W -f='${Installed-Size}' aers) KiB (Installed-Size)"

step "maintainer scripts: user, directories, unit"
in_chroot getent passwd aers > /dev/null || fail "user aers was not created"
in_chroot id -nG aers | grep -qw audio || fail "aers is not in group audio"
for d in /var/lib/aers /etc/aers /var/log/aers; do
  [[ -d $chroot_dir$d ]] || fail "$d was not created"
done
# (names from the chroot's passwd: the host's may give the same uid another name)
in_chroot stat -c '%U:%G %a' /var/lib/aers | grep -q '^aers:aers 750$' \
  || fail "/var/lib/aers is $(in_chroot stat -c '%U:%G %a' /var/lib/aers)"
in_chroot stat -c '%U:%G %a' /etc/aers | grep -q '^root:aers 750$' \
  || fail "/etc/aers is $(in_chroot stat -c '%U:%G %a' /etc/aers)"
in_chroot stat -c '%U:%G %a' /var/log/aers | grep -q '^aers:aers 750$' \
  || fail "/var/log/aers is $(in_chroot stat -c '%U:%G %a' /var/log/aers)"
[[ -L $chroot_dir/etc/systemd/system/multi-user.target.wants/aersd.service ]] \
  || fail "aersd.service is not enabled"
for conffile in /etc/aers/aersd.yaml /etc/default/aersd; do
  grep -qx "$conffile" "$chroot_dir/var/lib/dpkg/info/aers.conffiles" \
    || fail "$conffile is not a conffile"
done
# verify also opens the unit's Documentation= man pages: with man-db, as on
# any Debian system that has man pages at all.
DEBIAN_FRONTEND=noninteractive in_chroot apt-get install -y -q --no-install-recommends man-db \
  >> "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt-get install man-db"; }
in_chroot systemd-analyze verify /lib/systemd/system/aersd.service > "$work/verify.log" 2>&1 \
  || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
echo "   user aers (groups: $(in_chroot id -nG aers)), directories, unit enabled, conffiles, unit verifies"

step "programs"
in_chroot aersd --version
in_chroot /usr/libexec/aers/aersd --version   # the daemon program: its libraries are there
in_chroot aersctl --help > /dev/null || fail "aersctl --help"
{ in_chroot aers-plugin 2>&1 || true; } | grep -q "aers-plugin verify DIR" || fail "aers-plugin does not print its usage"
for page in man1/aersctl.1.gz man1/aers-plugin.1.gz man5/aers.yaml.5.gz man8/aersd.8.gz; do
  [[ -f $chroot_dir/usr/share/man/$page ]] || fail "man page $page missing"
done
[[ -f $chroot_dir/usr/share/bash-completion/completions/aersctl ]] || fail "bash completion missing"

step "aersd on the null backend as user aers"
in_chroot install -d -o aers -g aers -m 0750 /run/aers
chroot --userspec=aers:aers "$chroot_dir" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/aers \
  /usr/bin/aersd --config /etc/aers/aersd.yaml --backend null --socket /run/aers/aersd.sock \
  --state_file /var/lib/aers/graph.yaml > "$work/aersd.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 100); do
  if in_chroot aersctl --socket /run/aers/aersd.sock status > "$work/status.txt" 2>&1; then
    ok=1
    break
  fi
  sleep 0.1
done
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
kill "$pid" 2>/dev/null || true
wait "$pid" || true
pid=
cp "$work/aersd.log" "$out/"
[[ $ok -eq 1 ]] || { cat "$work/aersd.log"; fail "aersctl status did not answer"; }
sed 's/^/   /' "$work/status.txt" | head -5
[[ -n $uid && $uid == "$(in_chroot id -u aers)" ]] || fail "aersd ran as uid '$uid', not aers"
echo "   aersd ran as aers (uid $uid)"
grep -q "backend" "$work/status.txt" || fail "status has no backend line"
step "purge"
# The daemon wrote its state; purge takes it, the logs and the conffiles.
[[ -f $chroot_dir/var/lib/aers/graph.yaml ]] || fail "the daemon wrote no state file"
DEBIAN_FRONTEND=noninteractive in_chroot apt-get purge -y -q aers > "$work/purge.log" 2>&1 \
  || { tail -20 "$work/purge.log"; fail "apt-get purge"; }
for d in /var/lib/aers /var/log/aers /etc/aers /etc/default/aersd /usr/bin/aersd /usr/libexec/aers; do
  [[ ! -e $chroot_dir$d ]] || fail "$d is left after purge"
done
echo "   purged: no /var/lib/aers, /var/log/aers, /etc/aers, /etc/default/aersd"
echo "deb-check: OK ($(basename "$deb"), lintian $errors errors / $warnings warnings)"

#!/usr/bin/env bash
# scripts/check-layers.sh passes on the tree and fails, naming FILE:LINE and
# the rule, when a file includes a layer above it; clang's thread-safety
# analysis (the flags meson.build adds for clang) rejects an unguarded read.
#   check_layers_test.sh SOURCE_ROOT
set -euo pipefail
root=${1:?usage: check_layers_test.sh SOURCE_ROOT}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$root/scripts/check-layers.sh" "$root" || fail "the tree itself breaks a layer rule"

# A copy with one forbidden include: the engine reaching up into control.
mkdir -p "$work/tree"
cp -r "$root/daemon" "$root/client" "$work/tree/"
sed -i '1a #include "control/service.h"' "$work/tree/daemon/engine/engine.cc"
if out=$("$root/scripts/check-layers.sh" "$work/tree" 2>&1); then
  fail "check-layers.sh accepted daemon/engine including control/service.h"
fi
grep -q 'daemon/engine/engine.cc:2: error: daemon/engine may not include "control/service.h"' \
  <<<"$out" || fail "unexpected message: $out"

# A backend header reaching into the control plane, and aersctl into the engine.
cp -r "$root/daemon" "$work/tree2"
mkdir -p "$work/t2" && mv "$work/tree2" "$work/t2/daemon" && cp -r "$root/client" "$work/t2/"
sed -i '1a #include "control/grpc/server.h"' "$work/t2/daemon/backend/backend.h"
sed -i '1a #include "engine/engine.h"' "$work/t2/client/aersctl.cc"
out=$("$root/scripts/check-layers.sh" "$work/t2" 2>&1) && fail "accepted two forbidden includes"
[[ $(grep -c ': error: ' <<<"$out") -eq 2 ]] || fail "expected two errors: $out"

# Thread-safety analysis: reading a guarded field without its lock is an error.
if command -v clang++ >/dev/null; then
  cat >"$work/tsa.cc" <<'CC'
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
struct Counter {
  absl::Mutex mu;
  int value ABSL_GUARDED_BY(mu) = 0;
  int Read() { return value; }  // no lock held
};
int main() { Counter c; return c.Read(); }
CC
  if clang++ -std=c++20 -fsyntax-only -Wthread-safety -Werror=thread-safety "$work/tsa.cc" \
      2>"$work/tsa.log"; then
    fail "clang accepted an unguarded read of an ABSL_GUARDED_BY field"
  fi
  grep -q "requires holding mutex 'mu'" "$work/tsa.log" || fail "$(cat "$work/tsa.log")"
  # ... and taking two locks against their declared order.
  cat >"$work/order.cc" <<'CC'
#include "absl/synchronization/mutex.h"
struct Engine {
  absl::Mutex edit;
  absl::Mutex state ABSL_ACQUIRED_AFTER(edit);
  void Wrong() {
    absl::MutexLock s(&state);
    absl::MutexLock e(&edit);
  }
};
int main() { Engine e; e.Wrong(); }
CC
  if clang++ -std=c++20 -fsyntax-only -Wthread-safety -Wthread-safety-beta \
      -Werror=thread-safety -Werror=thread-safety-beta "$work/order.cc" 2>"$work/order.log"; then
    fail "clang accepted locks taken against ABSL_ACQUIRED_AFTER"
  fi
  grep -q "must be acquired before" "$work/order.log" || fail "$(cat "$work/order.log")"
else
  fail "clang++ is not installed (scripts/install-deps.sh installs it)"
fi
echo "ok"

#!/usr/bin/env bash
# Sums meson's testlog.json over the build trees scripts/test.sh uses and
# prints one line per tree, then the total as
#   tests: N passed, N failed[, N skipped]
# Exits non-zero if anything failed or nothing ran. STEP_STATUS is the exit
# status of the steps around the tests (builds, scripts/arm64-check.sh's
# disassembly check): non-zero with no failed test counts as one failure, so
# the line never reads "0 failed" for a run that failed.
#   scripts/test-summary.sh [EXTRA_FAILURES [STEP_STATUS]]
set -uo pipefail
cd "$(dirname "$0")/.."
extra_failures=${1:-0}
step_status=${2:-0}
passed=0 failed=0 skipped=0
for d in build build-arm64 build-tsan build-asan build-fuzz; do
  log=$d/meson-logs/testlog.json
  [[ -f $log ]] || continue
  total=$(grep -c '"result"' "$log")
  ok=$(grep -cE '"result": *"(OK|EXPECTEDFAIL)"' "$log")
  skip=$(grep -cE '"result": *"SKIP"' "$log")
  bad=$((total - ok - skip))
  echo "$d: $ok passed, $bad failed"
  passed=$((passed + ok))
  failed=$((failed + bad))
  skipped=$((skipped + skip))
done
failed=$((failed + extra_failures))
if [[ $step_status -ne 0 && $failed -eq 0 ]]; then
  echo "a build or check step failed (its message is above)"
  failed=1
fi
line="tests: $passed passed, $failed failed"
[[ $skipped -gt 0 ]] && line+=", $skipped skipped"
echo "$line"
[[ $failed -eq 0 && $passed -gt 0 ]]

#!/usr/bin/env bash
# Static analysis of AERS's own C/C++ sources (not tests, not third party):
#
#   cppcheck     daemon/ client/ include/ plugins/   warning,performance,portability
#   flawfinder   the same trees                      report from level 3, fail at >= 4
#   clang-tidy   daemon/ and client/ *.cc            checks from .clang-tidy
#   secrets      every tracked file (git-secrets)    AWS keys, private keys, aers tokens
#
# Reports go to static-analysis/: cppcheck.txt, flawfinder.{txt,csv,sarif},
# flawfinder-summary.txt, clang-tidy{,-summary}.txt, git-secrets.txt,
# summary.txt.
# Exits non-zero if any tool reports a finding at error level:
#   cppcheck:   any finding of the enabled severities (--error-exitcode=1);
#   flawfinder: any hit of risk level >= FLAWFINDER_ERROR_LEVEL (default 4);
#   clang-tidy: a check listed in .clang-tidy's WarningsAsErrors, or code that
#               does not compile; other warnings are reported (clang-tidy.txt,
#               counts per check in clang-tidy-summary.txt). AERS_TIDY_STRICT=1
#               makes every warning an error.
#   secrets:    any match of a prohibited pattern that no allowed pattern
#               covers (see the secrets section below for both lists).
# A reviewed false positive is silenced where it occurs:
#   cppcheck:   // cppcheck-suppress ID
#   flawfinder: // flawfinder: ignore
#   clang-tidy: // NOLINT(check-name)
#
# Uses build/compile_commands.json when it lists every source of ours;
# otherwise configures static-analysis/build (meson setup and generated
# sources only, no compile).
#
#   scripts/static-analysis.sh              all four tools
#   scripts/static-analysis.sh cppcheck     only the named tools
#   scripts/static-analysis.sh secrets      only the secrets scan (no build needed)
#   AERS_SA_JOBS=2                          parallel jobs (default 2)
#   AERS_SECRETS_HISTORY=1                  secrets: also scan every commit
#
# Needs: cppcheck flawfinder clang-tidy git-secrets (Debian packages of the
# same names; scripts/install-deps.sh installs git-secrets).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
out=$root/static-analysis
jobs=${AERS_SA_JOBS:-2}
flawfinder_error_level=${FLAWFINDER_ERROR_LEVEL:-4}
mkdir -p "$out"

tools=("$@")
[[ ${#tools[@]} -eq 0 ]] && tools=(cppcheck flawfinder clang-tidy secrets)
want() { local t; for t in "${tools[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

for t in "${tools[@]}"; do
  case $t in
    cppcheck | flawfinder | clang-tidy)
      command -v "$t" >/dev/null || { echo "static-analysis.sh: $t not installed (apt-get install $t)" >&2; exit 2; } ;;
    secrets)
      command -v git-secrets >/dev/null || { echo "static-analysis.sh: git-secrets not installed (apt-get install git-secrets)" >&2; exit 2; }
      git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "static-analysis.sh: secrets: not a git work tree (or one git distrusts: git config --global --add safe.directory $root)" >&2; exit 2; } ;;
    *) echo "usage: scripts/static-analysis.sh [cppcheck] [flawfinder] [clang-tidy] [secrets]" >&2; exit 2 ;;
  esac
done

# Our trees, those that exist.
src_dirs=()
for d in daemon client include plugins; do [[ -d $d ]] && src_dirs+=("$d"); done
tidy_dirs=()
for d in daemon client; do [[ -d $d ]] && tidy_dirs+=("$d"); done

# --- compilation database ---------------------------------------------------
# build/compile_commands.json (scripts/test.sh makes it) when it compiles every
# .cc file of ours; otherwise (no build/, or build/ predates new sources) a
# private static-analysis/build, configured only, plus its generated sources
# (protoc/gRPC), so that clang-tidy sees what the compiler would.
covers_all() {  # covers_all DB: does DB list every .cc/.c under our trees?
  /usr/bin/python3 - "$1" "$root" "${src_dirs[@]}" <<'PY'
import json, os, sys
db, root, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
listed = {os.path.realpath(os.path.join(e["directory"], e["file"])) for e in json.load(open(db))}
missing = []
for d in dirs:
    for dp, _, fs in os.walk(os.path.join(root, d)):
        missing += [os.path.join(dp, f) for f in fs
                    if f.endswith((".cc", ".c", ".cpp")) and os.path.join(dp, f) not in listed]
for m in missing[:5]:
    print(f"  not in {db}: {os.path.relpath(m, root)}", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
}
ccdb_dir=
if ! want cppcheck && ! want clang-tidy; then
  :   # flawfinder and the secrets scan read the files themselves
elif [[ -f build/compile_commands.json ]] && covers_all build/compile_commands.json; then
  ccdb_dir=$root/build
elif want clang-tidy || [[ -f build/compile_commands.json ]]; then
  ccdb_dir=$out/build
  echo "static-analysis.sh: configuring $ccdb_dir (meson setup + generated sources only)"
  # Tests and benchmarks are not analysed: leave them out of the build.
  sa_opts=(-Dtests=false -Dbenchmarks=false)
  if [[ -f $ccdb_dir/build.ninja ]]; then
    meson setup --reconfigure "${sa_opts[@]}" "$ccdb_dir" >"$out/meson-setup.log" 2>&1
  else
    rm -rf "$ccdb_dir"
    meson setup "${sa_opts[@]}" "$ccdb_dir" >"$out/meson-setup.log" 2>&1
  fi || { cat "$out/meson-setup.log"; echo "static-analysis.sh: meson setup failed" >&2; exit 2; }
  mapfile -t generated < <(ninja -C "$ccdb_dir" -t targets all 2>/dev/null |
    sed -n 's/^\([^:]*\.\(h\|hh\|hpp\|pb\.cc\)\): .*/\1/p')
  if [[ ${#generated[@]} -gt 0 ]]; then
    ninja -C "$ccdb_dir" -j"$jobs" "${generated[@]}" >"$out/generate.log" 2>&1 ||
      { cat "$out/generate.log"; echo "static-analysis.sh: generating sources failed" >&2; exit 2; }
  fi
fi

# compile_commands.json restricted to our trees (no tests/, no generated code):
# cppcheck --project and clang-tidy both read it.
filtered_ccdb=
if [[ -n $ccdb_dir ]]; then
  filtered_ccdb=$out/ccdb
  mkdir -p "$filtered_ccdb"
  /usr/bin/python3 - "$ccdb_dir/compile_commands.json" "$filtered_ccdb/compile_commands.json" \
      "$root" "${src_dirs[@]}" <<'PY'
import json, os, sys
src, dst, root, dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
keep = []
for e in json.load(open(src)):
    path = os.path.realpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(path, root)
    if any(rel.startswith(d + "/") for d in dirs) and os.path.exists(path):
        keep.append(e)
json.dump(keep, open(dst, "w"), indent=1)
PY
fi

status=0
summary=()

# --- cppcheck ---------------------------------------------------------------
if want cppcheck; then
  echo "== cppcheck"
  # shellcheck disable=SC2054  # the commas belong to --enable=
  cc_args=(--enable=warning,performance,portability --error-exitcode=1 --inline-suppr
           --suppress=missingIncludeSystem --std=c++20 --quiet -j"$jobs"
           --template='{file}:{line}:{column}: {severity}: {message} [{id}]')
  # Generated code (protoc/grpc headers in the build tree) is not ours, and
  # without the system headers cppcheck trips over its version #error.
  cc_args+=(--suppress='*:*.pb.h' --suppress='*:*.grpc.pb.h')
  # The compiler's predefined platform macros, which cppcheck does not know:
  # without them `#if defined(__x86_64__) ... #else #error` trips.
  cc_args+=(-D__linux__ -D__unix__)
  case $(uname -m) in
    x86_64) cc_args+=(-D__x86_64__) ;;
    aarch64) cc_args+=(-D__aarch64__) ;;
    riscv64) cc_args+=(-D__riscv) ;;
  esac
  [[ -n $ccdb_dir ]] && cc_args+=(--suppress="*:$ccdb_dir/*")
  rm -f "$out/cppcheck.txt"
  rc=0
  if [[ -n $filtered_ccdb ]]; then
    cppcheck "${cc_args[@]}" --output-file="$out/cppcheck.txt" \
      --project="$filtered_ccdb/compile_commands.json" || rc=$?
    # Sources of ours the build does not compile (yet) are checked plainly.
    mapfile -t listed < <(/usr/bin/python3 -c '
import json, os, sys
for e in json.load(open(sys.argv[1])):
    print(os.path.relpath(os.path.realpath(os.path.join(e["directory"], e["file"]))))
' "$filtered_ccdb/compile_commands.json" | sort)
    mapfile -t extra < <(comm -23 <(find "${src_dirs[@]}" -type f \( -name '*.cc' -o -name '*.cpp' -o -name '*.c' \) | sort) \
                                  <(printf '%s\n' "${listed[@]}"))
    if [[ ${#extra[@]} -gt 0 ]]; then
      echo "cppcheck: also checking ${#extra[@]} file(s) not in the compilation database"
      cppcheck "${cc_args[@]}" --output-file="$out/cppcheck-extra.txt" -Iinclude -Idaemon \
        "${extra[@]}" || rc=$?
      cat "$out/cppcheck-extra.txt" >>"$out/cppcheck.txt" 2>/dev/null
      rm -f "$out/cppcheck-extra.txt"
    fi
  else
    cppcheck "${cc_args[@]}" --output-file="$out/cppcheck.txt" -Iinclude -Idaemon \
      "${src_dirs[@]}" || rc=$?
  fi
  touch "$out/cppcheck.txt"
  sed -i "s|^$root/||" "$out/cppcheck.txt"
  n=$(grep -c ': \(error\|warning\|performance\|portability\|style\): ' "$out/cppcheck.txt")
  cat "$out/cppcheck.txt"
  if [[ $rc -ne 0 ]]; then
    status=1
    summary+=("cppcheck: $n finding(s) FAIL")
  else
    summary+=("cppcheck: $n finding(s) ok")
  fi
fi

# --- flawfinder -------------------------------------------------------------
# flawfinder matches names, not types. Its StrCat rule (CWE-120) is about the
# Windows shlwapi StrCat(dst, src); on Linux the only StrCat is absl::StrCat,
# which returns a new std::string and cannot overflow. Such hits stay in the
# report, marked, but never fail the run.
if want flawfinder; then
  echo "== flawfinder"
  flawfinder --minlevel=3 --columns --context "${src_dirs[@]}" >"$out/flawfinder.txt" 2>&1
  flawfinder --minlevel=3 --sarif "${src_dirs[@]}" >"$out/flawfinder.sarif" 2>/dev/null
  flawfinder --minlevel=3 --csv "${src_dirs[@]}" >"$out/flawfinder.csv" 2>/dev/null
  /usr/bin/python3 - "$flawfinder_error_level" "$out/flawfinder.csv" \
      >"$out/flawfinder-summary.txt" <<'PY'
import csv, sys
error_level = int(sys.argv[1])
windows_only = {"StrCat", "StrCatA", "StrCatW", "StrCatBuff", "StrCatBuffA", "StrCatBuffW",
                "StrCatChainW", "StrCatN", "StrCatNA", "StrCatNW", "StrNCat", "StrNCatA",
                "StrNCatW"}
hits = errors = 0
for row in csv.DictReader(open(sys.argv[2], newline="")):
    hits += 1
    level = int(row["Level"])
    note = ""
    if row["Name"] in windows_only:
        note = "  (not failing: absl::StrCat, not the Windows API)"
    elif level >= error_level:
        errors += 1
        note = "  <- ERROR"
    print(f'{row["File"]}:{row["Line"]}:{row["Column"]}: [{level}] {row["Name"]}: '
          f'{row["Warning"]}{note}')
print(f"HITS {hits} ERRORS {errors}")
PY
  read -r _ n_all _ n_err < <(tail -n1 "$out/flawfinder-summary.txt")
  # The console gets the failing hits; every hit is in the report files.
  grep -F '<- ERROR' "$out/flawfinder-summary.txt" || true
  if [[ ${n_err:-1} -gt 0 ]]; then
    status=1
    summary+=("flawfinder: ${n_all:-?} hit(s) at level >= 3, ${n_err:-?} failing at level >= $flawfinder_error_level FAIL")
  else
    summary+=("flawfinder: $n_all hit(s) at level >= 3, 0 failing at level >= $flawfinder_error_level ok")
  fi
fi

# --- clang-tidy -------------------------------------------------------------
if want clang-tidy; then
  echo "== clang-tidy"
  mapfile -t tidy_files < <(/usr/bin/python3 - "$filtered_ccdb/compile_commands.json" "$root" \
      "${tidy_dirs[@]}" <<'PY'
import json, os, sys
db, root, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
seen = set()
for e in json.load(open(db)):
    rel = os.path.relpath(os.path.realpath(os.path.join(e["directory"], e["file"])), root)
    if rel.endswith(".cc") and any(rel.startswith(d + "/") for d in dirs) and rel not in seen:
        seen.add(rel)
        print(rel)
PY
  )
  tidy_args=(-p "$filtered_ccdb" --quiet
             # The database is GCC's: drop its -Werror (compiler warnings are
             # the compiler's job) and let clang ignore GCC-only flags.
             --extra-arg=-Wno-error --extra-arg=-Wno-unknown-warning-option)
  # Error level: what .clang-tidy's WarningsAsErrors says (and anything that
  # does not compile); AERS_TIDY_STRICT=1 makes every warning an error.
  if [[ ${AERS_TIDY_STRICT:-0} == 1 ]]; then
    tidy_args+=(--warnings-as-errors='*')
  fi
  rm -rf "$out/.tidy"
  mkdir -p "$out/.tidy"
  export out
  # One clang-tidy per file, $jobs at a time; xargs appends the file name.
  # shellcheck disable=SC2016  # expanded by the inner bash
  printf '%s\n' "${tidy_files[@]}" |
    xargs -r -P "$jobs" -n 1 bash -c '
      f=${!#}; key=$(printf %s "$f" | tr / _)
      clang-tidy "${@:1:$#-1}" "$f" >"$out/.tidy/$key.log" 2>&1
      echo "$? $f" >"$out/.tidy/$key.rc"' _ "${tidy_args[@]}"
  # Merge: repo-relative paths, one copy of a header's diagnostic however many
  # files include it, and a count per check.
  tidy_report() {
    /usr/bin/python3 - "$out/.tidy" "$root" "$out/clang-tidy.txt" <<'PY'
import collections, glob, os, re, sys
tidy_dir, root, report = sys.argv[1], sys.argv[2], sys.argv[3]
diag = re.compile(r"^(/?[^ :][^:]*):(\d+):(\d+): (warning|error|note): (.*)$")
blocks, seen, failed = [], set(), []
for log in sorted(glob.glob(os.path.join(tidy_dir, "*.log"))):
    try:
        rc_text, src = open(log[:-4] + ".rc").read().strip().split(" ", 1)
        rc = int(rc_text)
    except (OSError, ValueError):
        rc, src = 1, os.path.basename(log)[:-4]
    cur = None
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        if re.match(r"^\d+ (warning|error)s? .*generated\.$|^Suppressed \d+ warnings|"
                    r"^Use -header-filter|^Error while processing|^Found compiler error", line):
            continue
        m = diag.match(line)
        if m:
            path = m.group(1)
            if os.path.isabs(path):
                path = os.path.relpath(os.path.realpath(path), root)
            while path.startswith("../") and not os.path.exists(os.path.join(root, path)):
                path = path[3:]   # relative to the build directory: back to the root
            line = f"{path}:{m.group(2)}:{m.group(3)}: {m.group(4)}: {m.group(5)}"
            if m.group(4) != "note":
                cur = [line]
                blocks.append(cur)
                continue
        if cur is not None:
            cur.append(line)
    if rc != 0:
        failed.append(f"{src} (exit {rc})")
by_check = collections.Counter()
errors = []
with open(report, "w") as out:
    for b in blocks:
        if b[0] in seen:
            continue
        seen.add(b[0])
        out.write("\n".join(b) + "\n")
        m = re.search(r"\[([^\]]+)\]$", b[0])
        check = m.group(1).split(",")[0] if m else "clang-diagnostic-error"
        by_check[check] += 1
        if ": error: " in b[0]:
            errors.append(b[0])
for check, n in by_check.most_common():
    print(f"  {n:5d}  {check}")
for e in errors:
    print(f"ERROR {e}")
for f in failed:   # clang-tidy exited non-zero: an error above, or it crashed
    print(f"clang-tidy failed on {f}")
print(f"TIDY {len(seen)} {len(errors)} {len(failed)}")
PY
  }
  tidy_report | tee "$out/clang-tidy-summary.txt" | grep -v '^TIDY '
  read -r _ n n_err n_failed < <(tail -n1 "$out/clang-tidy-summary.txt")
  rm -rf "$out/.tidy"
  if [[ ${n_failed:-1} -ne 0 || ${n_err:-1} -ne 0 ]]; then
    status=1
    summary+=("clang-tidy: $n finding(s) in ${#tidy_files[@]} file(s), $n_err error(s) FAIL")
  else
    summary+=("clang-tidy: $n finding(s) in ${#tidy_files[@]} file(s), 0 errors ok")
  fi
fi

# --- secrets (git-secrets) ----------------------------------------------------
# Scans the tracked files of the work tree (what a commit would publish) with
# `git secrets --scan`; AERS_SECRETS_HISTORY=1 adds `--scan-history` (every
# commit reachable in this clone; CI clones are shallow). The patterns are
# registered in a throwaway global git config (GIT_CONFIG_GLOBAL), so the
# scan neither needs nor changes ~/.gitconfig or .git/config; patterns a
# developer added to .git/config still apply on top.
# git-secrets joins the patterns with | after splitting them on white space
# and runs `git grep -w`: a pattern must contain no space ([[:space:]]), must
# not start with '-' ([-]), and must match at word boundaries.
if want secrets; then
  echo "== git-secrets"
  secrets_cfg=$(mktemp -d)
  # The AWS patterns (access key ids, secret keys, account ids), the AWS
  # documentation's example keys allowed, and ~/.aws/credentials if present.
  prohibited=(
    # PEM private keys: RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS#8 ...
    '[-]{5}BEGIN[[:space:]]([A-Z0-9]+[[:space:]])*PRIVATE[[:space:]]KEY[-]{5}'
    # aers bearer tokens (--token_file lines "viewer|operator TOKEN"), as a
    # line of a committed token file ...
    '^[[:space:]]*(viewer|operator)[[:space:]]+[A-Za-z0-9._~+/=-]{16,}'
    # ... or written into a string literal ("...\noperator TOKEN", "operator TOKEN").
    '[[:alnum:]_]*(\\n|["'"'"'])(viewer|operator)[[:space:]]+[A-Za-z0-9._~+/=-]{16,}'
    # minisign secret keys (plugin signing keys, `aersctl plugin keygen`):
    # unencrypted (Ed, KDF 0, B2) and scrypt-encrypted (Ed, Sc, B2).
    '(RWQAAEIy|RWRTY0Iy)[A-Za-z0-9+/]{100,}'
  )
  # Deliberate fixtures, each named by path and string; git-secrets matches
  # these against its "FILE:LINE:TEXT" output (history: "COMMIT:FILE:...").
  # Add a line here for a new fixture; never switch the scan off for a tree.
  allowed=(
    # unit test: a token file written for the authenticator under test
    # ([[:space:]], not a space: a space here would make this line a token line itself)
    '^([0-9a-f]{40}:)?tests/control/control_test\.cc:[0-9]+:.*"#[[:space:]]tokens\\noperator[[:space:]]abcdefghijklmnop0123\\n"'
  )
  secrets_rc=0
  # safe.directory is read only from the global/system config: keep the
  # caller's entries (a CI checkout owned by another user needs them).
  mapfile -t safe_dirs < <(git config --global --get-all safe.directory 2>/dev/null)
  (
    export GIT_CONFIG_GLOBAL=$secrets_cfg/gitconfig
    touch "$GIT_CONFIG_GLOBAL"
    for d in "${safe_dirs[@]}"; do git config --global --add safe.directory "$d"; done
    git secrets --register-aws --global >/dev/null
    for p in "${prohibited[@]}"; do git secrets --add --global "$p"; done
    for p in "${allowed[@]}"; do git secrets --add --allowed --global "$p"; done
    git secrets --list > "$out/git-secrets-patterns.txt"
    {
      git secrets --scan || exit 1
      if [[ ${AERS_SECRETS_HISTORY:-0} == 1 ]]; then git secrets --scan-history || exit 1; fi
    } 2>&1
  ) >"$out/git-secrets.txt" || secrets_rc=1
  rm -rf "$secrets_cfg"
  n_files=$(git ls-files | wc -l)
  if [[ $secrets_rc -ne 0 ]]; then
    cat "$out/git-secrets.txt"
    status=1
    summary+=("secrets: prohibited pattern(s) found in $n_files tracked file(s) FAIL")
  else
    summary+=("secrets: $n_files tracked file(s), no prohibited pattern ok")
  fi
fi

printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
exit $status

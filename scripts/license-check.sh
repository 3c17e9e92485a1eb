#!/usr/bin/env bash
# Licence gate for shipping aersd (Apache-2.0) as a binary.
#
#  1. Dependencies: every package of the SBOM (scripts/sbom.sh: the
#     install-deps.sh runtime and build lists, plus the packages of the
#     libraries a built aersd loads), with the licence sbom.sh read from
#     /usr/share/doc/PKG/copyright, is judged by how it reaches the product:
#       linked    runtime libraries (DYNAMIC_LINK) and -dev packages whose
#                 headers are compiled in (BUILD_DEPENDENCY_OF): the licence
#                 must be on the allow list below;
#       program   separate programs talked to over IPC (RUNTIME_DEPENDENCY_OF):
#                 any free licence; copyleft ones are listed as notes;
#       tool/test build tools and test frameworks: nothing of them ships.
#  2. Our sources (daemon/ client/ include/ plugins/ tests/ scripts/): the
#     leading comment block of each file must not grant a licence other than
#     the project's (no foreign SPDX-License-Identifier, no copyleft grant, no
#     proprietary notice). Files without a header are covered by LICENSE.
#
# Prints both tables; exits 1 on any violation, 2 on usage/tool errors.
#
#   scripts/license-check.sh [--sbom FILE]     (default: run scripts/sbom.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

sbom=
while [[ $# -gt 0 ]]; do
  case $1 in
    --sbom) sbom=${2:?--sbom needs a file}; shift 2 ;;
    *) echo "usage: scripts/license-check.sh [--sbom FILE]" >&2; exit 2 ;;
  esac
done
tmp=
if [[ -z $sbom ]]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  scripts/sbom.sh >"$tmp" || { echo "license-check.sh: scripts/sbom.sh failed" >&2; exit 2; }
  sbom=$tmp
fi

/usr/bin/python3 - "$sbom" <<'PY'
import json, os, re, sys

doc = json.load(open(sys.argv[1]))

# ---------------------------------------------------------------------------
# Policy.
#
# Linked into (or compiled into) the Apache-2.0 aersd binary we ship:
#   - permissive licences: Apache-2.0, MIT/X11 (Debian "Expat"), BSD-2/3-Clause,
#     ISC, Zlib, BSL-1.0, CC0, public domain;
#   - LGPL-2.0+/2.1/2.1+/3+: fine for a proprietary or Apache binary as long as
#     the library is linked dynamically and can be replaced (Debian's shared
#     libraries: libjack, libasound, libsndfile, libsystemd, libc...);
#   - GPL-3.0+ WITH GCC-exception-3.1 (libstdc++, libgcc_s): the GCC Runtime
#     Library Exception lets any program link them;
#   - GPL-2.0 WITH Linux-syscall-note (kernel UAPI headers): the note exempts
#     user space.
# A package whose licence expression is an OR passes if any branch passes
# (we take that licence); an AND needs every part.
#
# JACK: Debian's jackd2 source builds two things. libjack (libjack-jackd2-0,
# -dev) is LGPL-2.1+ and is what aersd links. The jackd server (package
# jackd2) contains GPL-2+ code, but aersd never links it: it is a separate
# program that aersd talks to over a Unix socket and shared memory, which is
# "mere aggregation" for the GPL, exactly like any other JACK client. So jackd2
# is a "program" dependency (RUNTIME_DEPENDENCY_OF in the SBOM): allowed, and
# listed as a note so that whoever ships both in one image also ships jackd's
# GPL text and source offer (Debian's /usr/share/doc/jackd2 already does).
# Berkeley DB 5.3 (libdb5.3, linked by Debian's libjack for JACK metadata) is
# under the Sleepycat licence: OSI-approved and fine to link, but binary
# redistribution must come with information on how to obtain the complete
# source of the program that uses it. aers is open source (Apache-2.0), so a
# release that points at its source satisfies this; it is listed as a note.
LINK_NOTES = {
    "Sleepycat": "binary redistribution must say where to get the complete source of "
                 "aers (the Apache-2.0 source release does)",
}
LINK_OK = {
    "Sleepycat",
    "Apache-2.0", "MIT", "X11", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib",
    "BSL-1.0", "CC0-1.0", "LicenseRef-public-domain", "FSFAP", "NTP",
    "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-or-later",
    "GPL-3.0-or-later WITH GCC-exception-3.1", "GPL-2.0-only WITH Linux-syscall-note",
}
# Free licences acceptable for separate programs (any OSI/FSF-free licence).
FREE = LINK_OK | {
    "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
    "LGPL-2.0-only", "LGPL-3.0-only", "MPL-2.0", "Artistic-1.0", "GPL-1.0-or-later",
}
COPYLEFT_NOTE = re.compile(r"^(A?GPL|LGPL|MPL)")

ROLE_OF_REL = {
    "DYNAMIC_LINK": "linked", "BUILD_DEPENDENCY_OF": "linked",
    "RUNTIME_DEPENDENCY_OF": "program", "BUILD_TOOL_OF": "tool",
    "TEST_DEPENDENCY_OF": "test",
}
RANK = {"linked": 0, "program": 1, "tool": 2, "test": 3}


def tokenize(expr):
    return re.findall(r"\(|\)|[A-Za-z0-9.+:-]+", expr)


def parse(tokens):
    """SPDX expression -> nested ('or'|'and', [...]) / leaf string."""
    pos = 0

    def atom():
        nonlocal pos
        if tokens[pos] == "(":
            pos += 1
            e = expr_or()
            pos += 1  # ')'
            return e
        lic = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos].upper() == "WITH":
            lic = f"{lic} WITH {tokens[pos + 1]}"
            pos += 2
        return lic

    def expr_and():
        nonlocal pos
        parts = [atom()]
        while pos < len(tokens) and tokens[pos].upper() == "AND":
            pos += 1
            parts.append(atom())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def expr_or():
        nonlocal pos
        parts = [expr_and()]
        while pos < len(tokens) and tokens[pos].upper() == "OR":
            pos += 1
            parts.append(expr_and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    return expr_or()


def judge(tree, allowed):
    """-> (ok, the licence(s) we rely on or that fail)."""
    if isinstance(tree, str):
        return tree in allowed, tree
    op, parts = tree
    results = [judge(p, allowed) for p in parts]
    if op == "or":
        for ok, lic in results:
            if ok:
                return True, lic
        return False, " OR ".join(l for _, l in results)
    bad = [l for ok, l in results if not ok]
    if bad:
        return False, " AND ".join(bad)
    return True, " AND ".join(l for _, l in results)


by_id = {p["SPDXID"]: p for p in doc["packages"]}
root = doc["documentDescribes"][0]
roles = {}
for r in doc["relationships"]:
    kind = r["relationshipType"]
    if kind not in ROLE_OF_REL:
        continue
    other = r["relatedSpdxElement"] if r["spdxElementId"] == root else r["spdxElementId"]
    role = ROLE_OF_REL[kind]
    if other in by_id and (other not in roles or RANK[role] < RANK[roles[other]]):
        roles[other] = role

rows, violations, notes = [], [], []
for sid, role in sorted(roles.items(), key=lambda kv: (RANK[kv[1]], by_id[kv[0]]["name"])):
    p = by_id[sid]
    lic = p.get("licenseConcluded", "NOASSERTION")
    if lic == "NOASSERTION":
        lic = p.get("licenseDeclared", "NOASSERTION")
    ver = p.get("versionInfo", "(not installed)")
    if role in ("tool", "test"):
        verdict = "ok (not shipped)"
    elif lic == "NOASSERTION":
        verdict = "UNKNOWN"
        violations.append(f"{p['name']}: no licence found; add a conclusion in scripts/sbom.sh")
    else:
        ok, used = judge(parse(tokenize(lic)), LINK_OK if role == "linked" else FREE)
        if ok:
            verdict = "ok" if used in (lic, lic.strip("()")) else f"ok ({used})"
            for lic_id, why in LINK_NOTES.items():
                if role == "linked" and re.search(rf"\b{lic_id}\b", used):
                    notes.append(f"{p['name']}: {lic_id}: {why}")
            if role == "program" and COPYLEFT_NOTE.match(used):
                notes.append(f"{p['name']}: {used}, a separate program (IPC only, not linked); "
                             "ship its licence text and source offer with any image that "
                             "contains it")
        else:
            verdict = "VIOLATION"
            violations.append(f"{p['name']} ({role}): {used} is not allowed for {role} "
                              "dependencies of an Apache-2.0 binary")
    rows.append((p["name"], ver, role, lic, verdict))

# --- our own sources --------------------------------------------------------
our_lic = by_id[root].get("licenseDeclared", "Apache-2.0")
HEADER_OK_SPDX = {our_lic, "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "ISC",
                  "Zlib", "BSL-1.0", "CC0-1.0"}
CONFLICT = [
    (re.compile(r"GNU (Affero |Lesser |Library )?General Public License", re.I),
     "copyleft licence grant"),
    (re.compile(r"licen[cs]ed under (the )?(terms of )?(the )?(A|L)?GPL", re.I),
     "copyleft licence grant"),
    (re.compile(r"Mozilla Public License|Eclipse Public License|Creative Commons", re.I),
     "foreign licence grant"),
    (re.compile(r"All rights reserved|proprietary and confidential|confidential and "
                r"proprietary|do not (copy|distribute)", re.I),
     "proprietary notice"),
]
COMMENT = re.compile(r"^\s*(#|//|/\*|\*|\*/|--|;|$)")
src_rows, src_bad = [], []
n_files = n_spdx = 0
for top in ("daemon", "client", "include", "plugins", "tests", "scripts"):
    if not os.path.isdir(top):
        continue
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            path = os.path.join(dirpath, fn)
            try:
                with open(path, "rb") as f:
                    head = f.read(8192)
            except OSError:
                continue
            if b"\0" in head:
                continue  # binary (test fixtures)
            n_files += 1
            header = []
            for line in head.decode("utf-8", "replace").splitlines()[:80]:
                if not COMMENT.match(line):
                    break
                header.append(line)
            text = "\n".join(header)
            for m in re.finditer(r"SPDX-License-Identifier:\s*([^\s*]+(?:\s+(?:OR|AND|WITH)\s+[^\s*]+)*)", text):
                n_spdx += 1
                ids = set(re.findall(r"[A-Za-z0-9.+-]+", m.group(1))) - {"OR", "AND", "WITH"}
                foreign = sorted(ids - HEADER_OK_SPDX)
                if foreign:
                    src_bad.append(f"{path}: SPDX-License-Identifier {m.group(1)} ({', '.join(foreign)})")
            for rx, what in CONFLICT:
                m = rx.search(text)
                if m:
                    src_bad.append(f"{path}: {what}: \"{m.group(0).strip()}\"")
                    break

# --- report -------------------------------------------------------------------
w = [max(len(str(r[i])) for r in rows + [("PACKAGE", "VERSION", "ROLE", "LICENSE", "VERDICT")])
     for i in range(5)]
fmt = "  ".join(f"{{:{n}}}" for n in w[:4]) + "  {}"
print(f"Dependencies of aers {by_id[root].get('versionInfo', '')} ({our_lic}):")
print(fmt.format("PACKAGE", "VERSION", "ROLE", "LICENSE", "VERDICT"))
print(fmt.format(*("-" * n for n in w)))
for r in rows:
    print(fmt.format(*r))
print()
print(f"Our sources: {n_files} files scanned in daemon/ client/ include/ plugins/ tests/ "
      f"scripts/, {n_spdx} SPDX identifier(s), {len(src_bad)} conflict(s)")
for b in src_bad:
    print(f"  CONFLICT {b}")
for n in notes:
    print(f"note: {n}")
for v in violations:
    print(f"VIOLATION: {v}")
bad = len(violations) + len(src_bad)
print(f"license-check: {len(rows)} packages, {len(violations)} dependency violation(s), "
      f"{len(src_bad)} source conflict(s): {'FAIL' if bad else 'OK'}")
sys.exit(1 if bad else 0)
PY

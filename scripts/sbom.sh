#!/usr/bin/env bash
# Prints an SBOM of AERS to stdout, SPDX 2.3 JSON (default) or CycloneDX 1.5
# JSON (--format cyclonedx), both from the same package data:
#   - the aers package itself (version and license from meson.build);
#   - every Debian package of scripts/install-deps.sh's runtime and build
#     lists, with its installed version (dpkg-query) and license, read best
#     effort from /usr/share/doc/PKG/copyright (the "Files: *" stanza's
#     License: for machine-readable files, a text match otherwise);
#   - when a built aersd is found (--binary PATH, $AERS_BINARY, or the
#     daemon program build/daemon/libexec/aersd, whose libraries include all
#     of the `aersd` command's), the Debian packages of every shared library
#     it loads (ldd), which covers libstdc++, libc and transitive libraries.
# SPDX relationships: aers DEPENDS_ON every package, plus the precise SPDX
# kind: DYNAMIC_LINK (runtime libraries), RUNTIME_DEPENDENCY_OF (separate
# programs such as the JACK server), BUILD_DEPENDENCY_OF (-dev packages whose
# headers are compiled in), BUILD_TOOL_OF (compilers, meson...). The
# install-deps.sh test list is not shipped and not listed.
# scripts/license-check.sh reads the SPDX document.
#
# CycloneDX: metadata.component is aers; one component per Debian package
# with its purl (pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12),
# licenses (the concluded licence where the table below has one, else the
# declared one from the copyright file; left out when unknown), scope
# "required" for what the installed daemon needs and "excluded" for build
# tools, -dev packages and test frameworks, and the SPDX role and licence
# details as "aers:" properties; dependencies: aers depends on every one.
#
#   scripts/sbom.sh [--binary PATH | --no-binary] > sbom.spdx.json
#   scripts/sbom.sh --format cyclonedx [--binary PATH | --no-binary] > sbom.cdx.json
#
# Deterministic apart from documentNamespace / serialNumber;
# SOURCE_DATE_EPOCH fixes the creation time. No network; needs only Debian's
# /usr/bin/python3 (stdlib) and dpkg.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${AERS_BINARY:-}
use_binary=1
format=spdx
usage="usage: scripts/sbom.sh [--format spdx|cyclonedx] [--binary PATH | --no-binary]"
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --no-binary) use_binary=0; shift ;;
    --format) format=${2:?--format needs spdx or cyclonedx}; shift 2 ;;
    --format=*) format=${1#--format=}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case $format in
  spdx | cyclonedx) ;;
  cdx) format=cyclonedx ;;
  *) echo "sbom.sh: unknown format '$format'; $usage" >&2; exit 2 ;;
esac
if [[ $use_binary -eq 1 && -z $binary && -x build/daemon/libexec/aersd ]]; then
  binary=build/daemon/libexec/aersd
fi
[[ $use_binary -eq 0 ]] && binary=

json=$(/usr/bin/python3 - "$binary" "$format" <<'PY'
import datetime, json, os, re, subprocess, sys, urllib.parse, uuid

binary = sys.argv[1]
out_format = sys.argv[2]

# --- our own package -------------------------------------------------------
meson = open("meson.build", encoding="utf-8").read()
proj = re.search(r"project\((.*?)\)\s*$", meson, re.S | re.M).group(1)
version = re.search(r"version\s*:\s*'([^']+)'", proj).group(1)
license_m = re.search(r"license\s*:\s*'([^']+)'", proj)
our_license = license_m.group(1) if license_m else "NOASSERTION"

# --- package lists -----------------------------------------------------------
deps_sh = open("scripts/install-deps.sh", encoding="utf-8").read()
lists = {}
for m in re.finditer(r"^(\w+)_pkgs=\((.*?)\)", deps_sh, re.S | re.M):
    body = "\n".join(line.split("#", 1)[0] for line in m.group(2).splitlines())
    lists[m.group(1)] = body.split()
for need in ("runtime", "build"):
    if need not in lists:
        sys.exit(f"sbom.sh: no {need}_pkgs=( ... ) list in scripts/install-deps.sh")

# Packages whose code never reaches the shipped binary (test frameworks).
TEST_ONLY = {"libgtest-dev", "libgmock-dev", "libbenchmark-dev"}


def role_of(name, listname):
    if listname == "runtime":
        return "dynamic-link" if name.startswith("lib") else "runtime-program"
    if name in TEST_ONLY:
        return "test"
    if name.startswith("lib") and name.endswith("-dev"):
        return "build-linked"
    return "build-tool"


roles = {}   # name -> (role, why)
for listname in ("runtime", "build"):
    for p in lists[listname]:
        if p not in roles:
            roles[p] = (role_of(p, listname), f"install-deps.sh {listname} list")

# Shared libraries the built daemon actually loads.
binary_note = "no built aersd inspected"
if binary and os.path.exists(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                             check=True).stdout
        libs = sorted({m.group(1) for m in re.finditer(r"=>\s+(/\S+)", out)})
        for lib in libs:
            owner = None
            for cand in (os.path.realpath(lib), lib):
                r = subprocess.run(["dpkg-query", "-S", cand], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":", 1)[0].split(",")[0].strip()
                    break
            if owner:
                prev = roles.get(owner)
                if prev is None or prev[0] != "dynamic-link":
                    roles[owner] = ("dynamic-link", f"aersd loads {os.path.basename(lib)}")
        binary_note = f"shared libraries of {binary} (ldd) included"
    except (OSError, subprocess.CalledProcessError) as e:
        binary_note = f"ldd {binary} failed: {e}"

# --- Debian license facts ------------------------------------------------------
DEB2SPDX = {
    "expat": "MIT", "mit": "MIT", "x11": "X11", "isc": "ISC", "zlib": "Zlib",
    "apache-2.0": "Apache-2.0", "apache-2": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd-2": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "bsd-c3": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "bsd-4": "BSD-4-Clause",
    "bsl-1.0": "BSL-1.0", "boost": "BSL-1.0",
    "gpl-1+": "GPL-1.0-or-later", "gpl-2": "GPL-2.0-only", "gpl-2.0": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later", "gpl-2.0+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only", "gpl-3.0": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later", "gpl-3.0+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
    "lpgl-2.1+": "LGPL-2.1-or-later",  # sic: alsa-lib's copyright file
    "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
    "mpl-2.0": "MPL-2.0", "cc0": "CC0-1.0", "cc0-1.0": "CC0-1.0",
    "artistic-1": "Artistic-1.0", "fsfap": "FSFAP", "ntp": "NTP",
    "public-domain": "LicenseRef-public-domain", "pd": "LicenseRef-public-domain",
    "sleepycat": "Sleepycat",
}
EXCEPTIONS = {
    "linux-syscall-note": "Linux-syscall-note", "gcc-exception-3.1": "GCC-exception-3.1",
    "openssl": "OpenSSL-exception", "autoconf": "Autoconf-exception-2.0",
    "bison": "Bison-exception-2.2", "classpath": "Classpath-exception-2.0",
    "llvm": "LLVM-exception",
}


def licref(text):
    return "LicenseRef-deb-" + (re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown")


def one_license(tok):
    tok = tok.strip().strip("()")
    m = re.fullmatch(r"(.+?)\s+with\s+(.+?)\s+exception", tok, re.I)
    if m:
        base = one_license(m.group(1))
        exc = EXCEPTIONS.get(m.group(2).lower())
        if exc and not base.startswith("LicenseRef"):
            return f"{base} WITH {exc}"
        return licref(tok)
    key = tok.lower()
    if key in DEB2SPDX:
        return DEB2SPDX[key]
    base = key.split("~", 1)[0]           # Debian variant marker: BSD-3-Clause~Google
    if base in DEB2SPDX:
        return DEB2SPDX[base]
    if key.startswith("public-domain"):
        return "LicenseRef-public-domain"
    m = re.fullmatch(r"bsd-([234])(-clause)?[-~_].+", key)   # BSD-3-google, BSD-3-clause-fjord
    if m:
        return f"BSD-{m.group(1)}-Clause"
    return licref(tok)


def deb_expr(text):
    """A DEP-5 License: short name expression -> an SPDX expression."""
    ors = [o for o in re.split(r"\s+or\s+", text.strip(), flags=re.I) if o]
    out = []
    for o in ors:
        ands = [one_license(a) for a in re.split(r"\s+and\s+", o, flags=re.I) if a]
        out.append(ands[0] if len(ands) == 1 else "(" + " AND ".join(ands) + ")")
    return out[0] if len(out) == 1 else " OR ".join(out)


def text_guess(text):
    """Licence of a copyright file that is not machine-readable (first grant wins)."""
    t = re.sub(r"\s+", " ", text)
    if "GCC RUNTIME LIBRARY EXCEPTION" in t.upper() and re.search(r"version 3", t):
        return "GPL-3.0-or-later WITH GCC-exception-3.1"
    pats = [
        (r"GNU Lesser General Public License.{0,120}?version 2\.1.{0,60}?any later", "LGPL-2.1-or-later"),
        (r"GNU Lesser General Public License.{0,120}?version 3.{0,60}?any later", "LGPL-3.0-or-later"),
        (r"GNU (Library|Lesser) General Public License.{0,120}?version 2.{0,60}?any later", "LGPL-2.0-or-later"),
        (r"GNU General Public License.{0,120}?version 3.{0,60}?any later", "GPL-3.0-or-later"),
        (r"GNU General Public License.{0,120}?version 2.{0,60}?any later", "GPL-2.0-or-later"),
        (r"GNU General Public License.{0,120}?version 2", "GPL-2.0-only"),
        (r"Apache License,? Version 2\.0", "Apache-2.0"),
        (r"Permission is hereby granted, free of charge", "MIT"),
        (r"Redistribution and use in source and binary forms", "BSD-3-Clause"),
    ]
    hits = []
    for rank, (rx, lic) in enumerate(pats):   # earliest grant wins; ties: list order
        m = re.search(rx, t, re.I)
        if m:
            hits.append((m.start(), rank, lic))
    return min(hits)[2] if hits else "NOASSERTION"


def copyright_info(pkg):
    """(declared SPDX expression, sorted list of every licence mentioned, source)."""
    path = f"/usr/share/doc/{pkg}/copyright"
    if not os.path.exists(path):
        return "NOASSERTION", [], "no copyright file"
    text = open(path, encoding="utf-8", errors="replace").read()
    if not re.search(r"^Format:\s*\S", text, re.M):
        g = text_guess(text)
        return g, ([g] if g != "NOASSERTION" else []), "copyright text (not DEP-5)"
    # DEP-5: paragraphs separated by blank lines.
    star = first = None
    every = set()
    for para in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:\s*(.*(?:\n[ \t].*)*)", para, re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)$", para, re.M)
        if not lic:
            continue
        expr = deb_expr(lic.group(1))
        if files:
            every.add(expr)
            if first is None:
                first = expr
            if star is None and files.group(1).split() == ["*"]:
                star = expr
    declared = star or first or "NOASSERTION"
    return declared, sorted(every), "DEP-5 copyright, " + ("Files: *" if star else "first Files stanza")


# Conclusions where the copyright file alone would mislead (licenseConcluded).
CONCLUDED = {
    "jackd2": ("GPL-2.0-or-later",
               "Debian lists LGPL-2.1+ for Files: *, but the jackd server program is built "
               "from GPL-2+ sources (upstream: server GPL, libjack LGPL)."),
    "libstdc++6": ("GPL-3.0-or-later WITH GCC-exception-3.1", "GCC runtime library exception"),
    "libgcc-s1": ("GPL-3.0-or-later WITH GCC-exception-3.1", "GCC runtime library exception"),
    "libc6": ("LGPL-2.1-or-later", "GNU C Library"),
    "libfmt9": ("MIT", "Debian: 'Expat with embedded exception', i.e. MIT plus a waiver of "
                "the notice requirement for object code embedding fmt"),
    "libflac12": ("BSD-3-Clause",
                  "the library sources (src/libFLAC*, include/FLAC*) are BSD-3-clause; "
                  "GPL/LGPL Files: * covers the command-line tools"),
}


def dpkg_info(pkg):
    fmt = "${Version}\t${Architecture}\t${db:Status-Abbrev}\t${source:Package}\t${Homepage}"
    r = subprocess.run(["dpkg-query", "-W", "-f", fmt, pkg], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout:
        return None
    ver, arch, status, src, home = (r.stdout.split("\t") + [""] * 5)[:5]
    if not status.startswith("ii"):
        return None
    return {"version": ver, "arch": arch, "source": src, "homepage": home.strip()}


def purl(name, info):
    """package-url of a Debian binary package: name, version and qualifier values
    percent-encoded as the purl spec asks (libstdc%2B%2B6, 1%3A2.0-1%2Bdeb12u1)."""
    q = lambda text: urllib.parse.quote(text, safe="")
    return (f"pkg:deb/debian/{q(name)}@{q(info['version'])}"
            f"?arch={q(info['arch'])}&distro={q(distro)}")


def spdx_id(name):
    return "SPDXRef-Package-deb-" + re.sub(r"[^A-Za-z0-9.-]", "-", name.replace("+", "p"))


created = datetime.datetime.fromtimestamp(
    int(os.environ.get("SOURCE_DATE_EPOCH", datetime.datetime.now().timestamp())),
    tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

distro = "debian"
try:
    osr = dict(l.rstrip("\n").split("=", 1) for l in open("/etc/os-release") if "=" in l)
    distro = f'{osr.get("ID", "debian")}-{osr.get("VERSION_ID", "").strip(chr(34))}'
except OSError:
    pass

aers_id = "SPDXRef-Package-aers"
packages = [{
    "name": "aers",
    "SPDXID": aers_id,
    "versionInfo": version,
    "primaryPackagePurpose": "APPLICATION",
    "supplier": "NOASSERTION",
    "downloadLocation": "NOASSERTION",
    "filesAnalyzed": False,
    "licenseConcluded": our_license,
    "licenseDeclared": our_license,
    "copyrightText": "NOASSERTION",
    "summary": "AERS real-time audio routing daemon (aersd) and client",
    "comment": binary_note,
}]
relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                  "relatedSpdxElement": aers_id}]

KIND = {
    "dynamic-link": ("DYNAMIC_LINK", False),
    "runtime-program": ("RUNTIME_DEPENDENCY_OF", True),
    "build-linked": ("BUILD_DEPENDENCY_OF", True),
    "build-tool": ("BUILD_TOOL_OF", True),
    "test": ("TEST_DEPENDENCY_OF", True),
}
order = {"dynamic-link": 0, "runtime-program": 1, "build-linked": 2, "build-tool": 3, "test": 4}
records = []   # the package data both formats are written from
for name in sorted(roles, key=lambda n: (order[roles[n][0]], n)):
    role, why = roles[name]
    info = dpkg_info(name)
    declared, every, src = copyright_info(name)
    records.append({"name": name, "role": role, "why": why, "info": info,
                    "declared": declared, "every": every, "src": src,
                    "concluded": CONCLUDED.get(name)})
    pkg = {
        "name": name,
        "SPDXID": spdx_id(name),
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseDeclared": declared,
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "LIBRARY" if name.startswith("lib") else "APPLICATION",
        "comment": f"role: {role} ({why}); license from {src}; every license in the "
                   f"copyright file: {', '.join(every) if every else 'n/a'}",
    }
    if name in CONCLUDED:
        pkg["licenseConcluded"], pkg["licenseComments"] = CONCLUDED[name]
    if info:
        pkg["versionInfo"] = info["version"]
        pkg["externalRefs"] = [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl(name, info),
        }]
        if info["source"] and info["source"] != name:
            pkg["sourceInfo"] = f"built from Debian source package {info['source']}"
        if info["homepage"]:
            pkg["homepage"] = info["homepage"]
    else:
        pkg["comment"] += "; not installed where this SBOM was generated"
    packages.append(pkg)
    relationships.append({"spdxElementId": aers_id, "relationshipType": "DEPENDS_ON",
                          "relatedSpdxElement": pkg["SPDXID"], "comment": role})
    kind, reverse = KIND[role]
    if reverse:
        relationships.append({"spdxElementId": pkg["SPDXID"], "relationshipType": kind,
                              "relatedSpdxElement": aers_id})
    else:
        relationships.append({"spdxElementId": aers_id, "relationshipType": kind,
                              "relatedSpdxElement": pkg["SPDXID"]})

# SPDX wants every LicenseRef- used in a licence field declared with its text.
refs = {}
for pkg in packages:
    for field in ("licenseDeclared", "licenseConcluded"):
        for ref in re.findall(r"LicenseRef-[A-Za-z0-9.-]+", pkg[field]):
            refs.setdefault(ref, []).append(pkg["name"])
extracted = [{
    "licenseId": ref,
    "name": ref[len("LicenseRef-"):].removeprefix("deb-"),
    "extractedText": "Licence named in the Debian copyright file(s) of "
                     + ", ".join(sorted(set(names)))
                     + ": see /usr/share/doc/<package>/copyright.",
} for ref, names in sorted(refs.items())]

doc = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": f"aers-{version}",
    "documentNamespace": f"https://spdx.org/spdxdocs/aers-{version}-{uuid.uuid4()}",
    "creationInfo": {
        "created": created,
        "creators": ["Tool: aers-scripts/sbom.sh", "Organization: AERS"],
        "comment": f"Debian package versions as installed on {distro}; "
                   "licenses best effort from /usr/share/doc/*/copyright.",
    },
    "documentDescribes": [aers_id],
    "packages": packages,
    "relationships": relationships,
}
if extracted:
    doc["hasExtractedLicensingInfos"] = extracted


# --- CycloneDX 1.5 ---------------------------------------------------------------
def cdx_licenses(expr):
    """An SPDX expression -> a CycloneDX licenses array (None when unknown)."""
    if not expr or expr == "NOASSERTION":
        return None
    if re.fullmatch(r"[A-Za-z0-9.+-]+", expr):       # one licence, no operator
        if expr.startswith("LicenseRef-"):
            return [{"license": {"name": expr[len("LicenseRef-"):].removeprefix("deb-")}}]
        return [{"license": {"id": expr}}]
    return [{"expression": expr}]


def cdx_props(pairs):
    return [{"name": k, "value": v} for k, v in pairs if v]


SCOPE = {"dynamic-link": "required", "runtime-program": "required",
         "build-linked": "excluded", "build-tool": "excluded", "test": "excluded"}


def debian_version():
    try:
        with open("/etc/debian_version") as f:
            return f.read().strip()
    except OSError:
        return None


def cyclonedx():
    components, refs = [], []
    # The operating system as a component: scanners (trivy, grype) match the
    # pkg:deb components against Debian's advisories only when the SBOM
    # names the distribution and its release.
    os_version = debian_version()
    if os_version:
        components.append({"type": "operating-system", "bom-ref": "os:debian",
                           "name": "debian", "version": os_version})
        refs.append("os:debian")
    for r in records:
        name, info = r["name"], r["info"]
        concluded, comment = r["concluded"] or (None, None)
        comp = {
            "type": "library" if name.startswith("lib") else "application",
            "bom-ref": purl(name, info) if info else f"deb:{name}",
            "supplier": {"name": "Debian"},
            "name": name,
        }
        if info:
            comp["version"] = info["version"]
        comp["scope"] = SCOPE[r["role"]]
        lic = cdx_licenses(concluded or r["declared"])
        if lic:
            comp["licenses"] = lic
        if info:
            comp["purl"] = purl(name, info)
            if info["homepage"]:
                comp["externalReferences"] = [{"type": "website", "url": info["homepage"]}]
        comp["properties"] = cdx_props([
            ("aers:role", r["role"]),
            ("aers:role-source", r["why"]),
            ("aers:spdx-relationship", KIND[r["role"]][0]),
            ("aers:license-declared", r["declared"]),
            ("aers:license-concluded", concluded),
            ("aers:license-comment", comment),
            ("aers:license-source", r["src"]),
            ("aers:licenses-in-copyright-file", ", ".join(r["every"])),
            ("aers:debian-source-package",
             info["source"] if info and info["source"] and info["source"] != name else None),
            ("aers:installed", "true" if info else "false: not installed where this SBOM "
                                                   "was generated"),
        ])
        components.append(comp)
        refs.append(comp["bom-ref"])
    aers = {
        "type": "application",
        "bom-ref": "aers",
        "name": "aers",
        "version": version,
        "description": "AERS real-time audio routing daemon (aersd) and client",
    }
    lic = cdx_licenses(our_license)
    if lic:
        aers["licenses"] = lic
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "group": "aers",
                                      "name": "scripts/sbom.sh", "version": version}]},
            "component": aers,
            "properties": cdx_props([
                ("aers:distro", distro),
                ("aers:binary", binary_note),
                ("aers:license-method", "Debian package versions as installed; licenses best "
                                        "effort from /usr/share/doc/*/copyright"),
            ]),
        },
        "components": components,
        "dependencies": [{"ref": "aers", "dependsOn": refs}]
                        + [{"ref": ref} for ref in refs],
    }


json.dump(cyclonedx() if out_format == "cyclonedx" else doc, sys.stdout, indent=2)
sys.stdout.write("\n")
PY
)
# Never hand out a document that does not parse, or a CycloneDX BOM without
# the fields its consumers key on.
printf '%s\n' "$json" | /usr/bin/python3 -c '
import json, sys
doc = json.load(sys.stdin)
if sys.argv[1] != "cyclonedx":
    sys.exit(0)
bad = [k for k in ("bomFormat", "specVersion", "version", "metadata", "components") if k not in doc]
if doc.get("bomFormat") != "CycloneDX" or doc.get("specVersion") != "1.5":
    bad.append("bomFormat/specVersion")
for c in doc.get("components", []):
    # A package has a version exactly when it has a purl; the OS has no purl.
    if "name" not in c or (c.get("type") != "operating-system" and
                           ("version" in c) != ("purl" in c)):
        bad.append("component " + c.get("name", "?"))
if bad:
    sys.exit("sbom.sh: CycloneDX document lacks: " + ", ".join(bad))
' "$format" || { echo "sbom.sh: generated SBOM is not valid" >&2; exit 1; }
printf '%s\n' "$json"

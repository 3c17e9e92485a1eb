"""The man pages (docs/man/*.scd -> roff at build time) exist, are roff, and
stay true: every aersctl command of `aersctl --help` is in aersctl(1), every
aers-plugin command and option of its usage is in aers-plugin(1), the flags
aersd(8) names and the flags of `aersd --help` are the same set, and the example of
aers.yaml(5) is a valid configuration that renders.

  man_pages_test.py BUILD_DIR SOURCE_DIR
"""
import os
import re
import subprocess
import sys
import tempfile

build, source = sys.argv[1], sys.argv[2]
aersd = os.path.join(build, "daemon", "aersd")
aersctl = os.path.join(build, "client", "aersctl")
man = os.path.join(source, "docs", "man")
failures = []

for page in ("aersd.8", "aersctl.1", "aers-plugin.1", "aers.yaml.5"):
    path = os.path.join(build, "docs", "man", page)
    if not os.path.exists(path):
        failures.append(f"{path}: not generated")
        continue
    with open(path) as f:
        text = f.read()
    if ".TH" not in text or len(text) < 1000:
        failures.append(f"{path}: not a man page")

with open(os.path.join(man, "aersctl.1.scd")) as f:
    ctl_page = f.read()
helptext = subprocess.run([aersctl, "--help"], capture_output=True, text=True).stdout
commands = re.findall(r"^  ([a-z]+)\b", helptext.split("Global options:")[0], re.M)
for c in commands:
    if f"*{c}" not in ctl_page:
        failures.append(f"aersctl.1.scd: command '{c}' of aersctl --help is missing")

with open(os.path.join(man, "aers-plugin.1.scd")) as f:
    tool_page = f.read()
tool_usage = subprocess.run([os.path.join(build, "daemon", "plugin", "aers-plugin")],
                            capture_output=True, text=True).stderr
for usage_line in re.findall(r"^  aers-plugin (.+)$", tool_usage, re.M):
    words = usage_line.split()
    if f"*{words[0]}*" not in tool_page:
        failures.append(f"aers-plugin.1.scd: command '{words[0]}' of the usage is missing")
    for opt in (w.strip("[]") for w in words[1:] if w.lstrip("[").startswith("-")):
        if f"*{opt}*" not in tool_page:
            failures.append(f"aers-plugin.1.scd: option {opt} of '{words[0]}' is missing")

with open(os.path.join(man, "aersd.8.scd")) as f:
    d_page = f.read()
d_help = subprocess.run([aersd, "--help"], capture_output=True, text=True).stdout
page_flags = set(re.findall(r"\*--([a-z_]+)\*", d_page))
for flag in page_flags:
    if flag not in ("help", "version") and f"--{flag} (" not in d_help:
        failures.append(f"aersd.8.scd: --{flag} is not a flag of aersd --help")
# ... and every flag aersd --help lists is on the page.
for flag in set(re.findall(r"^    --([a-z_]+) \(", d_help, re.M)) - page_flags:
    failures.append(f"aersd.8.scd: --{flag} of aersd --help is missing")

with open(os.path.join(man, "aers.yaml.5.scd")) as f:
    example = re.search(r"# EXAMPLE\n\n```\n(.*?)```", f.read(), re.S).group(1)
with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "example.yaml")
    with open(cfg, "w") as f:
        f.write(example)
    wav_in = os.path.join(tmp, "in.wav")
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", wav_in, "trim", "0", "0.1"],
                   check=True)
    r = subprocess.run([aersd, "render", "--config", cfg, "--input", wav_in, "--output",
                        os.path.join(tmp, "out.wav")], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"aers.yaml.5.scd: the EXAMPLE does not render: {r.stderr.strip()}")

for f in failures:
    print(f, file=sys.stderr)
print(f"man pages: {len(failures)} problem(s)")
sys.exit(1 if failures else 0)

"""The convolver kind in aersd: `aersd render` through a convolver equals
BruteFIR and `sox ... fir` (independent FFT convolvers, Debian packages) on
the same files; impulse-response files outside the data directories, a
directory or a non-audio file are refused with FILE:LINE:COLUMN and the
field; in a running daemon a new ir_file is applied by `aersctl set`, and a
bad one is refused with the graph and its revision untouched.
"""

import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import AERSD, wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
RATE = 48000
TAPS = 4000


def write_wav(path, channels, rate=RATE):
    """32-bit float WAV (format 3) of equal-length channels."""
    n, c = len(channels[0]), len(channels)
    data = b"".join(struct.pack(f"<{c}f", *[ch[i] for ch in channels]) for i in range(n))
    hdr = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 3, c,
                      rate, rate * 4 * c, 4 * c, 32, b"data", len(data))
    with open(path, "wb") as f:
        f.write(hdr + data)


def read_wav(path):
    """Channels of a float WAV (plain or WAVE_FORMAT_EXTENSIBLE)."""
    with open(path, "rb") as f:
        b = f.read()
    i, ch, data = 12, 0, b""
    while i + 8 <= len(b):
        cid, size = struct.unpack("<4sI", b[i:i + 8])
        body = b[i + 8:i + 8 + size]
        if cid == b"fmt ":
            ch = struct.unpack("<H", body[2:4])[0]
        elif cid == b"data":
            data = body
        i += 8 + size + (size & 1)
    v = struct.unpack(f"<{len(data) // 4}f", data)
    return [v[c::ch] for c in range(ch)]


def max_diff(a, b, lag=0):
    """Largest |a[k + lag] - b[k]| where both exist."""
    n = min(len(a) - lag, len(b))
    return max(abs(a[k + lag] - b[k]) for k in range(n))


CONFIG = """version: 1
engine: {{sample_rate_hz: 48000}}
backend: {{type: "null"}}
inputs: [{{name: in, channels: 2}}]
outputs: [{{name: out, channels: 2}}]
nodes:
  - name: room
    kind: convolver
    channels: 2
    params: {{ir_file: {ir}}}
routes:
  - {{from: in, to: room}}
  - {{from: room, to: out}}
"""


class ConvolverTest(aers_it.JackTestCase):
    tag = "convolver"
    needs_jack = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = random.Random(7)
        cls.taps = [0.03 * rng.gauss(0, 1) * math.exp(-t / 1000) for t in range(TAPS)]
        cls.x = [[rng.uniform(-0.5, 0.5) for _ in range(2 * RATE)] for _ in range(2)]
        write_wav(cls.tmp.file("room.wav"), [cls.taps])
        write_wav(cls.tmp.file("in.wav"), cls.x)
        os.makedirs(cls.tmp.file("adir"), exist_ok=True)
        with open(cls.tmp.file("notes.wav"), "w") as f:
            f.write("not audio\n")

    def render(self, config_text, *flags):
        config = self.tmp.file("conv.yaml")
        with open(config, "w") as f:
            f.write(config_text)
        out = self.tmp.file("out.wav")
        r = subprocess.run([AERSD, "render", "--config", config, "--input",
                            self.tmp.file("in.wav"), "--output", out, "--period_frames", "256",
                            *flags], capture_output=True, text=True, timeout=120)
        return r, out

    def test_render_equals_brutefir_and_sox_fir(self):
        r, out = self.render(CONFIG.format(ir="room.wav"))
        self.assertEqual(r.returncode, 0, r.stderr)
        y = read_wav(out)
        self.assertEqual(len(y), 2)
        self.assertEqual(len(y[0]), 2 * RATE)
        peak = max(abs(v) for v in y[0])
        self.assertGreater(peak, 0.1)  # not silence

        if shutil.which("brutefir") is None:
            self.fail("brutefir is not installed (scripts/install-deps.sh installs it)")
        raw_in, raw_out = self.tmp.file("in.raw"), self.tmp.file("bf.raw")
        with open(raw_in, "wb") as f:
            f.write(b"".join(struct.pack("<2f", self.x[0][i], self.x[1][i])
                             for i in range(len(self.x[0]))))
        with open(self.tmp.file("coefs.raw"), "wb") as f:
            f.write(struct.pack(f"<{TAPS}f", *self.taps))
        conf = self.tmp.file("bf.conf")
        with open(conf, "w") as f:
            f.write(f"""float_bits: 32; sampling_rate: {RATE}; filter_length: 256,16;
overflow_warnings: false; show_progress: false; max_dither_table_size: 0;
coeff "c" {{ filename: "{self.tmp.file('coefs.raw')}"; format: "FLOAT_LE"; }};
input "l","r" {{ device: "file" {{ path: "{raw_in}"; }}; sample: "FLOAT_LE"; channels: 2; }};
output "l","r" {{ device: "file" {{ path: "{raw_out}"; }}; sample: "FLOAT_LE"; channels: 2; }};
filter "fl" {{ from_inputs: "l"; to_outputs: "l"; coeff: "c"; }};
filter "fr" {{ from_inputs: "r"; to_outputs: "r"; coeff: "c"; }};
""")
        # BruteFIR keeps its defaults and FFTW wisdom under $HOME.
        b = subprocess.run(["brutefir", conf], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, HOME=self.tmp.path))
        self.assertEqual(b.returncode, 0, b.stdout + b.stderr)
        with open(raw_out, "rb") as f:
            raw = f.read()
        v = struct.unpack(f"<{len(raw) // 4}f", raw)
        bf = [v[0::2], v[1::2]]
        for c in range(2):
            # BruteFIR adds no delay in file mode: sample for sample.
            self.assertLess(max_diff(y[c], bf[c]), 1e-5 * peak, f"brutefir channel {c}")

        # sox's fir takes the filter as centred: its output leads by
        # (taps - 1) // 2 frames.
        coefs = self.tmp.file("coefs.txt")
        with open(coefs, "w") as f:
            f.write("\n".join(f"{t:.9g}" for t in self.taps) + "\n")
        ref = self.tmp.file("sox.wav")
        s = subprocess.run(["sox", "-V1", self.tmp.file("in.wav"), "-e", "floating-point", ref,
                            "fir", coefs], capture_output=True, text=True, timeout=120)
        self.assertEqual(s.returncode, 0, s.stderr)
        sx = read_wav(ref)
        for c in range(2):
            self.assertLess(max_diff(y[c], sx[c], lag=(TAPS - 1) // 2), 1e-5 * peak,
                            f"sox channel {c}")

    def test_refusals_name_file_line_column_and_field(self):
        outside = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"
        for ir, phrase in [("adir", "'adir' is a directory"),
                           ("notes.wav", "'notes.wav' is not an audio file aersd reads"),
                           ("missing.wav", "'missing.wav': "),
                           (outside, "outside the data directories")]:
            r, out = self.render(CONFIG.format(ir=ir))
            self.assertNotEqual(r.returncode, 0, ir)
            self.assertRegex(r.stderr, r"conv\.yaml:10:\d+: nodes\[0\]\.params\.ir_file: ", ir)
            self.assertIn(phrase, r.stderr, ir)
        # --data_dir lets a file from elsewhere in.
        other = aers_it.TempDir("convolver-other")
        try:
            shutil.copy(self.tmp.file("room.wav"), other.file("ir.wav"))
            r, _ = self.render(CONFIG.format(ir=other.file("ir.wav")))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("outside the data directories", r.stderr)
            r, _ = self.render(CONFIG.format(ir=other.file("ir.wav")), "--data_dir", other.path)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            other.cleanup()

    def ctl(self, sock, *args, ok=True):
        r = subprocess.run([AERSCTL, "--socket", sock, *args], capture_output=True, text=True,
                           timeout=30)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_live_ir_change_and_refusal(self):
        config = self.tmp.file("live.yaml")
        with open(config, "w") as f:
            f.write(CONFIG.format(ir="room.wav"))
        write_wav(self.tmp.file("short.wav"), [[0.5, 0.25]])
        sock = self.tmp.file("live.sock")
        self.start_aersd(config, args=["--backend", "null", "--socket", sock, "--mlock=false"],
                         tag="live")
        wait_until(lambda: self.ctl(sock, "health", ok=False).returncode == 0, 10, "serving")
        rev = lambda: json.loads(self.ctl(sock, "graph", "--json").stdout)["revision"]  # noqa
        before = rev()
        r = self.ctl(sock, "set", "room", "ir_file", "short.wav")
        self.assertEqual(rev(), str(int(before) + 1) if isinstance(before, str) else before + 1)
        graph = json.loads(self.ctl(sock, "graph", "--json").stdout)["graph"]
        (node,) = [n for n in graph["nodes"] if n["name"] == "room"]
        self.assertEqual(node["params"]["ir_file"]["choice"], "short.wav")
        for bad, phrase in [("adir", "is a directory"), ("/etc/passwd", "outside the data"),
                            ("notes.wav", "not an audio file")]:
            r = self.ctl(sock, "set", "room", "ir_file", bad, ok=False)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("ir_file", r.stderr, bad)
            self.assertIn(phrase, r.stderr, bad)
        graph = json.loads(self.ctl(sock, "graph", "--json").stdout)["graph"]
        (node,) = [n for n in graph["nodes"] if n["name"] == "room"]
        self.assertEqual(node["params"]["ir_file"]["choice"], "short.wav")
        self.assertEqual(rev(), str(int(before) + 1) if isinstance(before, str) else before + 1)


if __name__ == "__main__":
    unittest.main()

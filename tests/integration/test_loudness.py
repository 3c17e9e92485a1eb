"""EBU R128 loudness of the meter node through a real aersd on a real jackd:
the figures reach StreamMeters, `aersctl top` and the stats file, and
`aersctl loudness-reset` restarts the integration.

A tone node plays a stereo 1 kHz sine at -23 dBFS (peak) into a meter: that
is EBU Tech 3341 case 1, -23.0 LUFS momentary, short-term and integrated,
true peak -23.0 dBTP on each channel.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")

GRAPH = """version: 1
backend:
  type: jack
  jack: {client_name: aers-loud}
outputs:
  - {name: out, channels: 2}
nodes:
  - {name: osc, kind: tone, channels: 2, params: {freq_hz: 1000, level_db: -23}}
  - {name: loud, kind: meter, channels: 2, params: {loudness: true}}
  - {name: plain, kind: meter, channels: 2}
routes:
  - {from: osc, to: loud}
  - {from: loud, to: plain}
  - {from: plain, to: out}
"""


class LoudnessTest(aers_it.JackTestCase):
    tag = "loudness"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        aers_it.generate_stubs(cls.tmp.path)
        global pb, rpc, grpc
        import grpc  # noqa: F401
        import control_pb2 as pb
        import control_pb2_grpc as rpc
        cls.config = cls.tmp.file("loudness.yaml")
        with open(cls.config, "w") as f:
            f.write(GRAPH)
        cls.socket = cls.tmp.file("aersd.sock")
        cls.daemon = cls.start_aersd(cls.config, args=["--socket", cls.socket])

    def ctl(self, *args, check=0):
        out = subprocess.run([AERSCTL, "--socket", self.socket, *args],
                             capture_output=True, text=True, timeout=30)
        if check is not None:
            self.assertEqual(out.returncode, check,
                             f"aersctl {' '.join(args)}: {out.stdout}{out.stderr}")
        return out

    def loudness(self):
        """The stats file's loudness of node 'loud' once it is there."""
        s = self.daemon.stats()
        return s and s.get("loudness", {}).get("loud") and s

    def wait_integrated(self, lufs, what):
        def near():
            s = self.loudness()
            i = s and s["loudness"]["loud"]["integrated_lufs"]
            return i is not None and abs(i - lufs) <= 0.1 and s
        return wait_until(near, 20, what)

    def test_1_figures_everywhere(self):
        # Stats file: Tech 3341 case 1 once 3 s have filled the short-term window.
        def settled():
            s = self.loudness()
            if not s:
                return None
            l = s["loudness"]["loud"]
            ok = all(l[k] is not None and abs(l[k] + 23.0) <= 0.1
                     for k in ("momentary_lufs", "short_term_lufs", "integrated_lufs"))
            return ok and s
        s = wait_until(settled, 20, "-23 LUFS in the stats file")
        self.assertLess(s["loudness"]["loud"]["loudness_range_lu"], 1.0)
        for ch in s["meters"]["loud"]:
            self.assertAlmostEqual(ch["true_peak_dbtp"], -23.0, delta=0.2)

        # StreamMeters: the same figures in a frame.
        stub = rpc.ControlStub(grpc.insecure_channel(f"unix:{self.socket}"))
        frames = stub.StreamMeters(pb.StreamMetersRequest(nodes=["loud"], rate_hz=20))
        for frame in frames:
            m = frame.meters[0]
            self.assertEqual(m.node, "loud")
            self.assertAlmostEqual(m.momentary_lufs, -23.0, delta=0.1)
            self.assertAlmostEqual(m.short_term_lufs, -23.0, delta=0.1)
            self.assertAlmostEqual(m.integrated_lufs, -23.0, delta=0.1)
            self.assertEqual(len(m.true_peak_dbtp), 2)
            for tp in m.true_peak_dbtp:
                self.assertAlmostEqual(tp, -23.0, delta=0.2)
            frames.cancel()
            break

        # aersctl top: a R128 line and a true-peak column.
        top = self.ctl("top", "--once", "loud").stdout
        self.assertIn("TP dBTP", top)
        r128 = [line for line in top.splitlines() if "R128" in line]
        self.assertEqual(len(r128), 1, top)
        self.assertRegex(r128[0], r"I -2[23]\.\d LUFS")
        frame = json.loads(self.ctl("top", "--once", "--json", "loud").stdout)
        self.assertAlmostEqual(frame["meters"][0]["integrated_lufs"], -23.0, delta=0.1)

    def test_2_reset_restarts_integration(self):
        self.wait_integrated(-23.0, "-23 LUFS integrated")
        # 10 dB quieter: without a reset the gated mean would stay near -23
        # for a long time; after one it is -33.
        self.ctl("set", "osc", "level_db", "-33")
        # The level glides; reset once the momentary window holds only -33.
        def quiet():
            s = self.loudness()
            m = s and s["loudness"]["loud"]["momentary_lufs"]
            return m is not None and abs(m + 33.0) <= 0.05 and s
        wait_until(quiet, 20, "-33 LUFS momentary")
        out = self.ctl("loudness-reset", "loud").stdout
        self.assertIn("loudness reset: loud", out)
        self.wait_integrated(-33.0, "-33 LUFS integrated after the reset")
        s = self.loudness()
        for ch in s["meters"]["loud"]:
            self.assertAlmostEqual(ch["true_peak_dbtp"], -33.0, delta=0.2)
        # Every meter at once (no names) also works; no graph edit is made.
        rev = json.loads(self.ctl("--json", "status").stdout).get("revision")
        self.ctl("loudness-reset")
        self.assertEqual(json.loads(self.ctl("--json", "status").stdout).get("revision"), rev)

    def test_3_errors(self):
        out = self.ctl("loudness-reset", "nope", check=4)
        self.assertIn("nodes[0]: no meter node named 'nope'", out.stderr)
        out = self.ctl("loudness-reset", "osc", check=4)  # a node, not a meter
        self.assertIn("no meter node named 'osc'", out.stderr)
        # A meter without loudness: named, and told how to turn it on.
        out = self.ctl("loudness-reset", "plain", check=6)
        self.assertIn("nodes[0]: meter 'plain' does not measure loudness; set its "
                      "params.loudness to true", out.stderr)
        # The audio thread allocated nothing all along (aersd_rtcheck).
        status = json.loads(self.ctl("--json", "status").stdout)
        if "rt_allocations" in status:
            self.assertEqual(int(status["rt_allocations"]), 0)


if __name__ == "__main__":
    unittest.main()

"""SIGHUP reloads the config atomically.

A valid changed file changes the audio (glitch-free path: same ports); an
invalid one is rejected with FILE:LINE:COLUMN errors in the log and the audio
is unchanged; a file that changes the external ports re-registers them.
"""

import math
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import db, wait_until  # noqa: E402

TEMPLATE = """version: 1
backend:
  type: jack
  jack: {{client_name: aers-reload}}
inputs:
  - {{name: mic, channels: 1}}
outputs:
  - {{name: mon, channels: 1}}
{extra_output}
nodes:
  - name: trim
    kind: gain
    channels: 1
    params: {{gain_db: {gain_db}}}
routes:
  - {{from: mic, to: trim}}
  - {{from: trim, to: mon}}
{extra_route}
"""


class ReloadTest(aers_it.JackTestCase):
    tag = "reload"

    def write_config(self, text):
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)  # atomic, as an editor or deploy tool would

    def gain_db(self, out_port="aers-reload:mon"):
        rec = self.jack.record(self.tmp, plays=["sine:1000:-20"], tos=["aers-reload:mic"],
                               froms=[out_port], seconds=0.3, settle=0.2)
        amp, _ = rec.tone(0, 1000)
        return db(amp) + 20

    def reload(self, offset, expect):
        self.aersd.signal(signal.SIGHUP)
        return self.aersd.wait_log(expect, after=offset)

    def test_reload(self):
        self.config = self.tmp.file("reload.yaml")
        self.write_config(TEMPLATE.format(gain_db=-6, extra_output="", extra_route=""))
        self.aersd = self.start_aersd(self.config)
        self.assertAlmostEqual(self.gain_db(), -6.0, delta=0.05)

        # Valid change: the audio follows.
        self.write_config(TEMPLATE.format(gain_db=-12, extra_output="", extra_route=""))
        offset = self.reload(0, r"reloaded: revision 2")
        self.assertAlmostEqual(self.gain_db(), -12.0, delta=0.05)

        # Invalid changes: errors logged with the position, audio unchanged.
        bad_range = TEMPLATE.format(gain_db=99, extra_output="", extra_route="")
        bad_line = bad_range.splitlines().index("    params: {gain_db: 99}") + 1
        bad_yaml = "version: 1\nnodes: [unclosed\n"
        for text, where in ((bad_range, rf"{re.escape(self.config)}:{bad_line}:\d+: "
                                        r"nodes\[0\]\.params\.gain_db"),
                            (bad_yaml, rf"{re.escape(self.config)}:\d+:\d+: ")):
            with self.subTest(config=text[:40]):
                self.write_config(text)
                offset = self.reload(offset, r"reload rejected, the running graph is unchanged")
                offset = self.aersd.wait_log(where, after=offset - 200)
                self.assertAlmostEqual(self.gain_db(), -12.0, delta=0.05)
                self.assertEqual(self.aersd.stats()["graph"]["revision"], 2)
        self.assertIsNone(self.aersd.proc.poll())

        # A change of the external ports: the new port appears and carries audio.
        self.write_config(TEMPLATE.format(
            gain_db=-3, extra_output="  - {name: extra, channels: 1}",
            extra_route="  - {from: trim, to: extra}"))
        offset = self.reload(offset, r"reloaded: revision 3")
        wait_until(lambda: "aers-reload:extra" in self.jack.ports(), 10, "port extra")
        self.assertAlmostEqual(self.gain_db("aers-reload:extra"), -3.0, delta=0.05)
        self.assertAlmostEqual(self.gain_db("aers-reload:mon"), -3.0, delta=0.05)

    def test_port_change_keeps_unchanged_ports(self):
        """Adding or removing one output never unregisters the others: the
        connection another client made to `mon` survives, and the audio on it
        is not interrupted (every 2 ms window of a recording that spans the
        change holds the tone at its level)."""
        self.config = self.tmp.file("ports.yaml")
        plain = TEMPLATE.format(gain_db=-6, extra_output="", extra_route="")
        extra = TEMPLATE.format(gain_db=-6, extra_output="  - {name: extra, channels: 1}",
                                extra_route="  - {from: trim, to: extra}")
        self.write_config(plain)
        self.aersd = self.start_aersd(self.config, tag="aersd-ports")
        revision = 1
        offset = 0
        for attempt in range(5):
            result = {}

            def record():
                result["rec"] = self.jack._record_once(
                    self.tmp, ["sine:1000:-20"], ["aers-reload:mic"], ["aers-reload:mon"], 0,
                    2.0, 0.3, "itprobe", 20.0)
            t = threading.Thread(target=record)
            t.start()
            time.sleep(1.0)  # the probe runs and records by now
            self.write_config(extra if attempt % 2 == 0 else plain)
            revision += 1
            offset = self.reload(offset, rf"reloaded: revision {revision}")
            t.join()
            rec = result["rec"]
            if rec.xruns or rec.gaps:
                print(f"attempt {attempt + 1}: {rec.xruns} xruns, {rec.gaps} clock jumps",
                      file=sys.stderr)
                continue
            x = rec.channel(0)
            window = 96  # two cycles of 1 kHz at 48 kHz: constant RMS
            levels = [math.sqrt(sum(v * v for v in x[i:i + window]) / window)
                      for i in range(0, len(x) - window, window)]
            want = 0.1 * 10 ** (-6 / 20) / math.sqrt(2)  # -20 dBFS sine through -6 dB
            worst = min(levels)
            self.assertGreater(worst, 0.9 * want,
                               f"audio on the unchanged port dropped to {worst:.4f} "
                               f"(want {want:.4f}) during the port change")
            self.assertLess(max(levels), 1.1 * want)
            self.assertRegex(self.aersd.log(),
                             r"external ports changed: \d+ registered, \d+ unregistered")
            ports = self.jack.ports()
            if attempt % 2 == 0:
                self.assertIn("aers-reload:extra", ports)
            else:
                self.assertNotIn("aers-reload:extra", ports)
            self.aersd.stop()
            return
        self.aersd.stop()
        self.skipTest("no recording without xruns on this machine: not a clean measurement")


if __name__ == "__main__":
    unittest.main(verbosity=2)

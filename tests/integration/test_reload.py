"""SIGHUP reloads the config atomically.

A valid changed file changes the audio (glitch-free path: same ports); an
invalid one is rejected with FILE:LINE:COLUMN errors in the log and the audio
is unchanged; a file that changes the external ports re-registers them.
"""

import os
import re
import signal
import sys
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


if __name__ == "__main__":
    unittest.main(verbosity=2)

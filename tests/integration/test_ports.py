"""Port registration and auto-connection follow the config (configs/ports.yaml).

aersd registers one JACK port per channel ("<port>_<n>", mono "<port>"),
connects them to the ports the config lists, connects peers that appear later
(the probe starts after aersd), reconnects them when they come back, and
reports the graph's latency on its ports.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, db, wait_until  # noqa: E402

CLIENT = "aers-ports"
AERSCTL = os.environ.get("AERSCTL", "aersctl")


class PortsTest(aers_it.JackTestCase):
    tag = "ports"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.aersd = cls.start_aersd(os.path.join(CONFIGS, "ports.yaml"))

    def ours(self, ports):
        return {n: p for n, p in ports.items() if n.startswith(CLIENT + ":")}

    def test_ports_named_per_channel(self):
        ports = self.ours(self.jack.ports())
        self.assertEqual(
            {n: p["direction"] for n, p in ports.items()},
            {f"{CLIENT}:main_1": "in", f"{CLIENT}:main_2": "in", f"{CLIENT}:mic": "in",
             f"{CLIENT}:main_out_1": "out", f"{CLIENT}:main_out_2": "out",
             f"{CLIENT}:mon": "out"})

    def test_system_ports_connected_as_configured(self):
        ports = wait_until(
            lambda: (p := self.jack.ports()) and p[f"{CLIENT}:main_out_2"]["connections"] and p,
            10, "system connections")
        self.assertEqual(ports[f"{CLIENT}:main_1"]["connections"], ["system:capture_1"])
        self.assertEqual(ports[f"{CLIENT}:main_2"]["connections"], ["system:capture_2"])
        self.assertEqual(ports[f"{CLIENT}:main_out_1"]["connections"], ["system:playback_1"])
        self.assertEqual(ports[f"{CLIENT}:main_out_2"]["connections"], ["system:playback_2"])

    def test_latency_includes_delay_node(self):
        # Dummy driver: capture latency 256 frames, playback 512; align adds 48.
        def settled():
            p = self.jack.ports()
            return (p[f"{CLIENT}:main_out_1"]["capture"] == [256 + 48, 256 + 48] and
                    p[f"{CLIENT}:main_1"]["playback"] == [512 + 48, 512 + 48])
        wait_until(settled, 10, "latency ranges of 256+48 (capture) and 512+48 (playback)")

    def test_latency_follows_live_edits(self):
        # A live edit of the delay changes what JACK reports; an edit that
        # changes no latency (a gain) leaves it, and the config's wiring, as
        # it was. Restored at the end for the other tests.
        def ctl(*args):
            subprocess.run([AERSCTL, "--socket", self.aersd.socket, *args], check=True,
                           capture_output=True, timeout=30)

        def latency(extra):
            p = self.jack.ports()
            return (p[f"{CLIENT}:main_out_1"]["capture"] == [256 + extra, 256 + extra] and
                    p[f"{CLIENT}:main_1"]["playback"] == [512 + extra, 512 + extra])

        # The probe's ports are gone by now (the late-peer test ran first):
        # the first edit finds them missing and says so; later edits do not
        # say it again.
        missing = "port 'itprobe_src:out' does not exist (yet)"
        try:
            ctl("set", "align", "delay_ms", "2")  # 96 frames
            said = self.aersd.log().count(missing)
            wait_until(lambda: latency(96), 10, "latency ranges of 256+96 and 512+96")
            ctl("set", "boost", "gain_db", "3")
            ctl("set", "boost", "gain_db", "4")
            self.assertTrue(latency(96), self.jack.ports()[f"{CLIENT}:main_out_1"])
            self.assertEqual(self.jack.ports()[f"{CLIENT}:main_1"]["connections"],
                             ["system:capture_1"])
            self.assertEqual(self.aersd.log().count(missing), said, self.aersd.log())
        finally:
            ctl("set", "boost", "gain_db", "6")
            ctl("set", "align", "delay_ms", "1")
        wait_until(lambda: latency(48), 10, "latency ranges of 256+48 and 512+48 again")

    def test_late_peer_is_connected_and_reconnected(self):
        # The probe's ports do not exist when aersd starts; aersd connects them
        # when they appear. The probe makes no connection itself: it waits.
        for attempt in range(2):  # and again after the probe went away
            with self.subTest(attempt=attempt):
                rec = self.jack.record(self.tmp, plays=["sine:1000:-20"], record=1,
                                       seconds=0.3, settle=0.2, timeout=15)
                amp, _ = rec.tone(0, 1000)
                self.assertAlmostEqual(db(amp) + 20, 6.0, delta=0.05)
        self.assertIn("connected itprobe_src:out -> aers-ports:mic", self.aersd.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)

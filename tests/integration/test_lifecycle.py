"""aersd's lifecycle against a real JACK server: clean stops, start errors,
log format under systemd."""

import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS  # noqa: E402


class LifecycleTest(aers_it.JackTestCase):
    tag = "life"

    def check_clean_stop(self, sig, client):
        aersd = self.start_aersd(os.path.join(CONFIGS, "ports.yaml"),
                                 args=["--jack_client_name", client], tag=client)
        self.assertTrue(self.jack.client_exists(client))
        aersd.signal(sig)
        self.assertEqual(aersd.wait_exit(), 0, aersd.log())
        # Gone from the graph: no client of that name, no ports of it.
        self.assertFalse(self.jack.client_exists(client))
        self.assertFalse([p for p in self.jack.ports() if p.startswith(client + ":")])
        self.assertRegex(aersd.log(), r"stopped")

    def test_sigterm_exits_0_and_leaves_no_client(self):
        self.check_clean_stop(signal.SIGTERM, "aers-term")

    def test_sigint_exits_0_and_leaves_no_client(self):
        self.check_clean_stop(signal.SIGINT, "aers-int")

    def test_invalid_config_at_start_exits_3_with_position(self):
        path = self.tmp.file("bad.yaml")
        with open(path, "w") as f:
            f.write("version: 1\nnodes:\n  - {name: x, kind: no_such_kind}\n")
        aersd = self.start_aersd(path, ready=False, tag="bad")
        self.assertEqual(aersd.wait_exit(), 3)
        self.assertRegex(aersd.log(), re.escape(path) + r":3:\d+: nodes\[0\]\.kind")
        self.assertFalse(self.jack.client_exists("aersd"))

    def test_journal_stream_gives_priority_prefixed_lines(self):
        aersd = self.start_aersd(os.path.join(CONFIGS, "audio.yaml"),
                                 args=["--jack_client_name", "aers-journal"],
                                 env={"JOURNAL_STREAM": "@log"}, tag="journal")
        aersd.signal(signal.SIGTERM)
        self.assertEqual(aersd.wait_exit(), 0)
        lines = [l for l in aersd.log().splitlines() if not l.startswith("libjack")]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>[^\[]")  # sd-daemon prefix, no timestamp
        self.assertIn("<6>audio running", aersd.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)

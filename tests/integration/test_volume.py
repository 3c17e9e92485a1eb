"""The volume kind's start-up limit in the daemon: whether the graph comes
from the config or from the persisted state, aersd starts a volume node no
louder than its startup_max_db, logs it, persists it, and lets it go above
the limit once running; `aersctl reset`, a reload (SIGHUP) and a restart
pull it back again.
"""

import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")

CONFIG = """version: 1
backend: {type: "null"}
inputs: [{name: main, channels: 2}]
outputs: [{name: main_out, channels: 2}]
nodes:
  - name: master
    kind: volume
    channels: 2
    params: {volume_db: 0, startup_max_db: -30, loudness: true}
  - {name: trim, kind: gain, channels: 2, params: {gain_db: 6}}
routes:
  - {from: main, to: master}
  - {from: master, to: trim}
  - {from: trim, to: main_out}
"""


class VolumeStartupTest(aers_it.JackTestCase):
    tag = "volume"
    needs_jack = False

    def ctl(self, sock, *args):
        r = subprocess.run([AERSCTL, "--socket", sock, *args], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def params(self, sock, node):
        graph = json.loads(self.ctl(sock, "graph", "--json"))["graph"]
        (n,) = [n for n in graph["nodes"] if n["name"] == node]
        return {k: v.get("number", v.get("flag")) for k, v in n.get("params", {}).items()}

    def start(self, config, state, sock):
        d = self.start_aersd(config, args=["--backend", "null", "--socket", sock,
                                           "--state_file", state, "--mlock=false"],
                             tag=f"aersd-{len(self._daemons)}")
        wait_until(lambda: subprocess.run([AERSCTL, "--socket", sock, "health"],
                                          capture_output=True).returncode == 0, 10, "serving")
        return d

    def test_startup_limit_from_config_and_from_state(self):
        config = self.tmp.file("v.yaml")
        with open(config, "w") as f:
            f.write(CONFIG)
        state = self.tmp.file("state.yaml")
        sock = self.tmp.file("v.sock")

        d = self.start(config, state, sock)
        self.assertEqual(self.params(sock, "master")["volume_db"], -30)
        self.assertEqual(self.params(sock, "trim")["gain_db"], 6)  # other kinds untouched
        self.assertIn("start-up limit: nodes[0] master: volume_db 0 dB is above "
                      "startup_max_db; starting at -30 dB", d.log())
        # Running, the fader goes where it is told, above the limit too.
        self.ctl(sock, "set", "master", "volume_db", "-3")
        self.assertEqual(self.params(sock, "master")["volume_db"], -3)
        # Back to the config (aersctl reset) or a reload of it (SIGHUP): the
        # config's graph is taken up as at a start, limit included.
        self.ctl(sock, "reset")
        self.assertEqual(self.params(sock, "master")["volume_db"], -30)
        self.ctl(sock, "set", "master", "volume_db", "-3")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded: revision")
        self.assertEqual(self.params(sock, "master")["volume_db"], -30)
        self.assertIn("start-up limit (reload): nodes[0] master", d.log())
        self.ctl(sock, "set", "master", "volume_db", "-3")
        d.stop()

        # The persisted state says -3: the restart starts at the limit again,
        # and persists that.
        with open(state) as f:
            self.assertIn("volume_db: -3", f.read())
        d = self.start(config, state, sock)
        self.assertEqual(self.params(sock, "master")["volume_db"], -30)
        self.assertIn("volume_db -3 dB is above startup_max_db", d.log())
        d.stop()
        with open(state) as f:
            self.assertIn("volume_db: -30", f.read())

        # At the limit (the state now says -30): nothing changes, nothing logged.
        d = self.start(config, state, sock)
        self.assertEqual(self.params(sock, "master")["volume_db"], -30)
        self.assertNotIn("start-up limit", d.log())
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

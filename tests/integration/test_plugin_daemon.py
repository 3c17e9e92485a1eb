"""Plugins in the running daemon: the gate admits a good plugin whose kind a
graph then uses (audio checked through a meter), refuses a tampered one with
an audit record, and the daemon keeps serving with its graph.

Runs on the null backend: no JACK server needed.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
EXAMPLE = os.environ.get("EXAMPLE_PLUGIN", "")
TEMPLATE = os.path.join(aers_it.SOURCE_ROOT, "plugins", "example_gain", "manifest.yaml.in")


class PluginDaemonTest(aers_it.JackTestCase):
    tag = "plugind"
    needs_jack = False

    def make_plugin(self, root, name, tamper=False):
        d = os.path.join(root, name)
        os.makedirs(d, mode=0o755)
        shutil.copy(EXAMPLE, os.path.join(d, "example_gain.so"))
        os.chmod(os.path.join(d, "example_gain.so"), 0o644)
        with open(TEMPLATE) as f:
            text = f.read().replace("name: example_gain", f"name: {name}")
        with open(os.path.join(d, "manifest.yaml"), "w") as f:
            f.write(text)
        out = subprocess.run([AERSCTL, "plugin", "hash", d, "--write"], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        if tamper:  # the module changes after the manifest pinned its hash
            with open(os.path.join(d, "example_gain.so"), "ab") as f:
                f.write(b"\0" * 16)
        return d

    @unittest.skipUnless(EXAMPLE, "EXAMPLE_PLUGIN not set")
    def test_gate_in_the_daemon(self):
        root = self.tmp.file("plugins")
        os.makedirs(root, mode=0o755)
        self.make_plugin(root, "goodgain")
        self.make_plugin(root, "badgain", tamper=True)
        audit = self.tmp.file("audit.jsonl")
        config = self.tmp.file("plugins.yaml")
        with open(config, "w") as f:
            f.write(f"""version: 1
backend: {{type: "null"}}
plugins:
  root: {root}
  require_signature: false
  state_dir: {self.tmp.file("plugin-state")}
  audit_log: {audit}
outputs: [{{name: out, channels: 1}}]
nodes:
  - {{name: t, kind: tone, params: {{freq_hz: 1000, level_db: -6}}}}
  - {{name: g, kind: goodgain/gain, params: {{gain_db: -6}}}}
  - {{name: m, kind: meter, params: {{window_ms: 50}}}}
routes:
  - {{from: t, to: g}}
  - {{from: g, to: m}}
  - {{from: m, to: out}}
""")
        sock = self.tmp.file("p.sock")
        d = self.start_aersd(config, args=["--backend", "null", "--socket", sock,
                                           "--state_file", self.tmp.file("state.yaml")])
        d.wait_log(r"plugin badgain refused: .*hash")

        def ctl(*args):
            return subprocess.run([AERSCTL, "--socket", sock, *args], capture_output=True,
                                  text=True, timeout=20)
        plugins = json.loads(ctl("plugins", "--json").stdout)["plugins"]
        self.assertEqual([p["name"] for p in plugins], ["goodgain"])
        self.assertEqual(plugins[0]["kinds"], ["goodgain/gain"])
        self.assertEqual(len(plugins[0]["hash"]), 64)

        # The plugin processes audio: tone -6 dBFS through -6 dB -> -12 dBFS.
        def peak_db():
            frame = json.loads(ctl("top", "--once", "--json", "m").stdout)
            return aers_it.db(frame["meters"][0]["peak"][0])
        wait_until(lambda: abs(peak_db() + 12.0) < 0.1, 10, "meter at -12 dBFS")
        self.assertEqual(ctl("set", "g", "gain_db", "0").returncode, 0)
        wait_until(lambda: abs(peak_db() + 6.0) < 0.1, 10, "meter at -6 dBFS")

        # The refused plugin's kind is unknown: using it is a clear error and
        # changes nothing; the daemon keeps serving.
        out = ctl("add", "x", "badgain/gain")
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertRegex(out.stderr, r"unknown kind 'badgain/gain': its plugin was not loaded: "
                                     r"plugin 'badgain' refused \(hash_mismatch\)")
        self.assertEqual(ctl("health").stdout.strip(), "SERVING")
        with open(audit) as f:
            records = [json.loads(line) for line in f if line.strip()]
        refused = [r for r in records if r.get("plugin") == "badgain"]
        self.assertTrue(refused, records)
        d.stop()

        # `aersd render` runs the same file with the same plugins through the
        # same gate: the plugin kind is known and processes audio offline
        # (tone -6 dBFS through -6 dB: peak -12 dBFS), the tampered one is
        # refused there too.
        out_wav = self.tmp.file("render.wav")
        r = subprocess.run([aers_it.AERSD, "render", "--config", config, "--output", out_wav,
                            "--duration_s", "0.5"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"plugin badgain refused: .*hash")
        stat = subprocess.run(["sox", out_wav, "-n", "stat"], capture_output=True, text=True)
        peak = max(abs(float(line.split(":")[1])) for line in stat.stderr.splitlines()
                   if line.startswith(("Maximum amplitude", "Minimum amplitude")))
        self.assertAlmostEqual(aers_it.db(peak), -12.0, delta=0.1)


    @unittest.skipUnless(EXAMPLE, "EXAMPLE_PLUGIN not set")
    def test_a_load_that_cannot_be_audited_is_refused(self):
        # plugins.audit_log on a device that takes nothing: the good plugin
        # passes every check, but its load cannot be recorded, so it does
        # not load (audit_error), and the graph that names its kind is
        # refused with nothing written.
        root = self.tmp.file("plugins-full")
        os.makedirs(root, mode=0o755)
        self.make_plugin(root, "goodgain")
        config = self.tmp.file("plugins-full.yaml")
        with open(config, "w") as f:
            f.write(f"""version: 1
plugins:
  root: {root}
  require_signature: false
  state_dir: {self.tmp.file("plugin-state-full")}
  audit_log: /dev/full
outputs: [{{name: out, channels: 1}}]
nodes:
  - {{name: t, kind: tone, params: {{freq_hz: 1000, level_db: -6}}}}
  - {{name: g, kind: goodgain/gain, params: {{gain_db: -6}}}}
routes:
  - {{from: t, to: g}}
  - {{from: g, to: out}}
""")
        out_wav = self.tmp.file("full.wav")
        r = subprocess.run([aers_it.AERSD, "render", "--config", config, "--output", out_wav,
                            "--duration_s", "0.2"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"plugin goodgain refused: .*\(audit_error\): its load cannot "
                                   r"be audited: the plugin audit log /dev/full cannot be "
                                   r"written: No space left on device")
        # The graph's error says why the kind is absent, not only that it is.
        self.assertRegex(r.stderr, r"unknown kind 'goodgain/gain': its plugin was not loaded: "
                                   r"plugin 'goodgain' refused \(audit_error\)")
        self.assertFalse(os.path.exists(out_wav))

    def test_example_ladspa_config(self):
        # configs/examples/ladspa as its comments say: copy, pin, render.
        if not os.path.exists("/usr/lib/ladspa/amp.so"):
            self.skipTest("ladspa-sdk's amp.so is not installed")
        ex = os.path.join(aers_it.SOURCE_ROOT, "configs", "examples", "ladspa")
        root = self.tmp.file("ladspa-plugins")
        shutil.copytree(os.path.join(ex, "plugins"), root)
        out = subprocess.run([AERSCTL, "plugin", "hash", os.path.join(root, "amp"), "--write"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(os.path.join(ex, "ladspa.yaml")) as f:
            text = f.read().replace("/etc/aers/plugins", root).replace(
                "/var/lib/aers/plugins", self.tmp.file("ladspa-state"))
        config = self.tmp.file("ladspa.yaml")
        with open(config, "w") as f:
            f.write(text)
        wav_in, wav_out = self.tmp.file("l-in.wav"), self.tmp.file("l-out.wav")
        subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "32", "-e", "floating-point",
                        wav_in, "synth", "0.5", "sine", "1000", "gain", "-6"], check=True)
        r = subprocess.run([aers_it.AERSD, "render", "--config", config, "--input", wav_in,
                            "--output", wav_out], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        stat = subprocess.run(["sox", wav_out, "-n", "stat"], capture_output=True, text=True)
        peak = max(abs(float(line.split(":")[1])) for line in stat.stderr.splitlines()
                   if line.startswith(("Maximum amplitude", "Minimum amplitude")))
        self.assertAlmostEqual(aers_it.db(peak), -12.0, delta=0.1)  # -6 dBFS, gain 0.5


if __name__ == "__main__":
    unittest.main(verbosity=2)

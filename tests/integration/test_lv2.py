"""LV2 plugins behind the gate, with real Debian plugins and lilv's own host
as the reference.

- Output of aersd (`aersd render`) against `lv2apply` (lilv-utils, an
  independent LV2 host) on the same input with the same control values, for
  swh-lv2 and mda-lv2 plugins, mono and stereo: max difference <= 1e-6.
- A plugin with a worker, state, log, an atom and a CV port, an enumeration
  and a preset (tests/plugin/lv2/stateful.c) in the running daemon: the
  worker runs, the state survives kill -9 and restart, presets are listed by
  `aersctl kinds` and used by `preset:`, and the audio thread allocates
  nothing (aersd_rtcheck).
- Every refusal of the gate for LV2, one plugin directory each, each with its
  audit record, while the daemon keeps serving.

Runs on the null backend and offline: no JACK server needed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import unittest
import wave  # noqa: F401 (documentation: the files are float WAV, read with sox)
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
LV2_DIR = os.environ.get("LV2_TEST_DIR", "")      # tests/plugin/lv2 (the .ttl files)
LV2_SO = os.environ.get("LV2_TEST_SO", "")        # the built stateful.so
SYSTEM_LV2 = "/usr/lib/lv2"
STATEFUL = "urn:aers:lv2:stateful"
SWH = "http://plugin.org.uk/swh-plugins/"
MDA = "http://drobilla.net/plugins/mda/"


def have(*paths):
    return all(os.path.exists(p) for p in paths)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def read_raw(path):
    """Samples of a float WAV (all channels interleaved), via sox."""
    raw = path + ".f32"
    r = run(["sox", path, "-t", "f32", "-e", "floating-point", "-b", "32", raw])
    assert r.returncode == 0, r.stderr
    a = array("f")
    with open(raw, "rb") as f:
        a.frombytes(f.read())
    return a


def write_manifest(d, name, bundle, plugins, dependencies=(), serial=1):
    """A manifest for `bundle` exposing `plugins` [(uri, kind)]; hashed by aersctl."""
    lines = [f"name: {name}", 'version: "1"', "format: lv2", f"bundle: {bundle}",
             "hash: {algorithm: sha256, value: " + "0" * 64 + "}", f"serial: {serial}",
             "allowed_node_kinds: [" + ", ".join(k for _, k in plugins) + "]",
             "plugins:"]
    lines += [f"  - {{uri: \"{u}\", kind: {k}}}" for u, k in plugins]
    if dependencies:
        lines.append("dependencies: [" + ", ".join(dependencies) + "]")
    with open(os.path.join(d, "manifest.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def hash_manifest(d):
    r = run([AERSCTL, "plugin", "hash", d, "--write"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def make_stateful_bundle(where):
    """A copy of the test bundle (manifest.ttl, stateful.ttl, stateful.so)."""
    os.makedirs(where, mode=0o755)
    for f in ("manifest.ttl", "stateful.ttl"):
        shutil.copy(os.path.join(LV2_DIR, f), os.path.join(where, f))
    shutil.copy(LV2_SO, os.path.join(where, "stateful.so"))
    for f in os.listdir(where):
        os.chmod(os.path.join(where, f), 0o644)
    return where


class Lv2ReferenceTest(unittest.TestCase):
    """aersd's output equals lv2apply's for the same plugin and controls."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = aers_it.TempDir("lv2ref")
        root = cls.tmp.file("plugins")
        os.makedirs(root, mode=0o755)
        cls.root = root
        # One plugin directory per Debian bundle used.
        d = os.path.join(root, "swh")
        os.makedirs(d, mode=0o755)
        # Several swh bundles: one plugin directory each (a manifest pins one bundle).
        cls.swh = {}
        for bundle, uri, kind in [("amp-swh.lv2", SWH + "amp", "amp"),
                                  ("lowpass_iir-swh.lv2", SWH + "lowpass_iir", "lowpass"),
                                  ("hard_limiter-swh.lv2", SWH + "hardLimiter", "hardlimiter"),
                                  ("latency-swh.lv2", SWH + "artificialLatency", "latency")]:
            name = "swh-" + kind
            pd = os.path.join(root, name)
            os.makedirs(pd, mode=0o755)
            write_manifest(pd, name, os.path.join(SYSTEM_LV2, bundle), [(uri, kind)])
            hash_manifest(pd)
            cls.swh[kind] = (name, uri)
        shutil.rmtree(d)
        md = os.path.join(root, "mda")
        os.makedirs(md, mode=0o755)
        write_manifest(md, "mda", os.path.join(SYSTEM_LV2, "mda.lv2"),
                       [(MDA + "Overdrive", "overdrive"), (MDA + "Detune", "detune"),
                        (MDA + "Delay", "delay")],
                       dependencies=["libstdc++.so.6", "libgcc_s.so.1"])
        hash_manifest(md)
        # Inputs: 1 s of a sweep plus noise, mono and stereo, float.
        cls.mono = cls.tmp.file("in1.wav")
        cls.stereo = cls.tmp.file("in2.wav")
        for path, ch in ((cls.mono, 1), (cls.stereo, 2)):
            r = run(["sox", "-n", "-r", "48000", "-c", str(ch), "-b", "32", "-e",
                     "floating-point", path, "synth", "1", "sine", "100-8000", "synth", "1",
                     "whitenoise", "mix", "gain", "-8"])
            assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def render(self, kind, channels, params, period=256, tag="x"):
        config = self.tmp.file(f"{tag}.yaml")
        ps = ", ".join(f"{k}: {v}" for k, v in params.items())
        with open(config, "w") as f:
            f.write(f"""version: 1
engine: {{sample_rate_hz: 48000, period_frames: {period}}}
plugins:
  root: {self.root}
  require_signature: false
  state_dir: {self.tmp.file("pstate")}
  allowed_system_dirs: [{SYSTEM_LV2}]
inputs: [{{name: in, channels: {channels}}}]
outputs: [{{name: out, channels: {channels}}}]
nodes:
  - {{name: p, kind: {kind}, channels: {channels}, params: {{{ps}}}}}
routes:
  - {{from: in, to: p}}
  - {{from: p, to: out}}
""")
        out = self.tmp.file(f"{tag}-aers.wav")
        src = self.stereo if channels == 2 else self.mono
        r = run([aers_it.AERSD, "render", "--config", config, "--input", src, "--output", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, src

    def compare(self, kind, uri, channels, params, period=256, lv2_params=None):
        tag = kind.replace("/", "_") + f"_{period}"
        out, src = self.render(kind, channels, params, period, tag)
        ref = self.tmp.file(f"{tag}-ref.wav")
        cmd = ["lv2apply", "-i", src, "-o", ref]
        for k, v in (lv2_params or params).items():
            cmd += ["-c", k, str(v)]
        r = run(cmd + [uri])
        self.assertEqual(r.returncode, 0, r.stderr)
        a, b = read_raw(out), read_raw(ref)
        self.assertEqual(len(a), len(b))
        worst = max(abs(x - y) for x, y in zip(a, b))
        energy = max(abs(x) for x in a)
        self.assertGreater(energy, 1e-3, f"{kind}: silent output")
        self.assertLessEqual(worst, 1e-6, f"{kind}: max |aersd - lv2apply| = {worst:.3g}")
        return worst

    def test_swh_amp(self):
        name, uri = self.swh["amp"]
        self.compare(f"{name}/amp", uri, 1, {"gain": -7.5})

    def test_swh_lowpass_per_sample_rate_bounds(self):
        # cutoff is lv2:sampleRate: its bounds scale with the rate, the value is in Hz.
        name, uri = self.swh["lowpass"]
        self.compare(f"{name}/lowpass", uri, 1, {"cutoff": 1200, "stages": 3})

    def test_swh_hard_limiter(self):
        name, uri = self.swh["hardlimiter"]
        self.compare(f"{name}/hardlimiter", uri, 1, {"limit_db": -12, "wet_gain": 1})

    # (lv2apply runs a plugin one frame at a time, so plugins whose output
    # depends on the block length, such as swh's fast lookahead limiter,
    # cannot be compared sample by sample; those here do not.)

    def test_swh_latency_port_is_the_nodes_latency(self):
        # artificialLatency passes audio through and reports `delay` ms as
        # latency on its lv2:reportsLatency port: 10 ms = 480 frames.
        name, uri = self.swh["latency"]
        self.compare(f"{name}/latency", uri, 1, {"delay": 10})
        config = self.tmp.file("lat.yaml")
        with open(config, "w") as f:
            f.write(f"""version: 1
backend: {{type: "null"}}
plugins:
  root: {self.root}
  require_signature: false
  state_dir: {self.tmp.file("pstate-lat")}
  allowed_system_dirs: [{SYSTEM_LV2}]
inputs: [{{name: in, channels: 1}}]
outputs: [{{name: out, channels: 1}}]
nodes:
  - {{name: l, kind: {name}/latency, params: {{delay: 10}}}}
routes:
  - {{from: in, to: l}}
  - {{from: l, to: out}}
""")
        sock = self.tmp.file("lat.sock")
        d = aers_it.Aersd(self.tmp, config, args=["--backend", "null", "--socket", sock],
                          tag="lat")
        try:
            def latency():
                r = run([AERSCTL, "--socket", sock, "status", "--json"])
                if r.returncode != 0:
                    return None
                return json.loads(r.stdout).get("latency")
            wait_until(lambda: latency(), 10, "status with latency")
            lat = latency()
            self.assertEqual(lat[0]["output"], "out", lat)
            self.assertEqual(int(lat[0]["frames"]), 480, lat)
        finally:
            d.stop()

    def test_mda_overdrive_stereo(self):
        self.compare("mda/overdrive", MDA + "Overdrive", 2, {"drive": 0.6, "muffle": 0.3})

    def test_mda_detune_stereo(self):
        self.compare("mda/detune", MDA + "Detune", 2, {"detune": 0.4, "mix": 0.8})

    def test_mda_delay_across_periods(self):
        for period in (64, 1024):
            self.compare("mda/delay", MDA + "Delay", 2, {"l_delay": 0.1, "feedback": 0.4},
                         period=period)


    def test_aersctl_sign_and_verify_an_lv2_manifest(self):
        d = os.path.join(self.root, "mda")
        pub, sec = self.tmp.file("k.pub"), self.tmp.file("k.sec")
        r = run([AERSCTL, "plugin", "keygen", "-p", pub, "-s", sec])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run([AERSCTL, "plugin", "sign", d, "-s", sec])
        self.assertEqual(r.returncode, 0, r.stderr)
        # (the other tests' daemons trust no key: the signature goes again)
        self.addCleanup(os.remove, os.path.join(d, "manifest.yaml.minisig"))
        r = run([AERSCTL, "plugin", "verify", d, "-p", pub])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bundle /usr/lib/lv2/mda.lv2 (libraries ", r.stdout)
        self.assertIn("Detune.so", r.stdout)
        # hash without --write tells whether the pinned tree still matches.
        r = run([AERSCTL, "plugin", "hash", d])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_example_config_and_a_debian_preset(self):
        # configs/examples/lv2 as the docs say: copy the plugin directories,
        # pin them with aersctl, render. The node starting from mda Detune's
        # "Out Of Tune" preset sounds exactly like one given its values.
        ex = os.path.join(aers_it.SOURCE_ROOT, "configs", "examples", "lv2")
        root = self.tmp.file("ex-plugins")
        shutil.copytree(os.path.join(ex, "plugins"), root)
        for name in ("swh-amp", "mda"):
            hash_manifest(os.path.join(root, name))
        with open(os.path.join(ex, "lv2.yaml")) as f:
            text = f.read()
        text = text.replace("/etc/aers/plugins", root).replace(
            "/var/lib/aers/plugins", self.tmp.file("ex-state"))
        preset_cfg = self.tmp.file("ex-preset.yaml")
        with open(preset_cfg, "w") as f:
            f.write(text)
        explicit_cfg = self.tmp.file("ex-explicit.yaml")
        with open(explicit_cfg, "w") as f:
            f.write(text.replace(
                'preset: "http://drobilla.net/plugins/mda/presets#Detune-out-of-tune"',
                "params: {detune: 0.8, mix: 0.7, output: 0.5, latency: 0.5}"))
        default_cfg = self.tmp.file("ex-default.yaml")
        with open(default_cfg, "w") as f:
            f.write(text.replace(
                ', preset: "http://drobilla.net/plugins/mda/presets#Detune-out-of-tune"', ""))
        outs = []
        for cfg in (preset_cfg, explicit_cfg, default_cfg):
            out = cfg + ".wav"
            r = run([aers_it.AERSD, "render", "--config", cfg, "--input", self.stereo,
                     "--output", out])
            self.assertEqual(r.returncode, 0, r.stderr)
            outs.append(read_raw(out))
        self.assertEqual(outs[0], outs[1])
        self.assertGreater(max(abs(x - y) for x, y in zip(outs[0], outs[2])), 1e-3)


@unittest.skipUnless(LV2_DIR and LV2_SO, "LV2_TEST_DIR / LV2_TEST_SO not set")
class Lv2DaemonTest(aers_it.JackTestCase):
    tag = "lv2d"
    needs_jack = False

    def ctl(self, sock, *args):
        return run([AERSCTL, "--socket", sock, *args])

    def peak_db(self, sock, meter="m"):
        r = self.ctl(sock, "top", "--once", "--json", meter)
        if r.returncode != 0:
            return None
        return aers_it.db(json.loads(r.stdout)["meters"][0]["peak"][0])

    def config(self, root, pstate, extra_nodes="", gain=0.5, preset=None, audit=None):
        path = self.tmp.file("lv2d.yaml")
        preset_text = f", preset: \"{preset}\"" if preset else ""
        params = f"params: {{gain: {gain}}}" if gain is not None else "params: {}"
        with open(path, "w") as f:
            f.write(f"""version: 1
backend: {{type: "null"}}
plugins:
  root: {root}
  require_signature: false
  state_dir: {pstate}
  allowed_system_dirs: [{SYSTEM_LV2}]
{f"  audit_log: {audit}" if audit else ""}
outputs: [{{name: out, channels: 1}}]
nodes:
  - {{name: t, kind: tone, params: {{freq_hz: 1000, level_db: -6}}}}
  - {{name: s, kind: st/stateful, {params}{preset_text}}}
  - {{name: m, kind: meter, params: {{window_ms: 50}}}}
{extra_nodes}
routes:
  - {{from: t, to: s}}
  - {{from: s, to: m}}
  - {{from: m, to: out}}
""")
        return path

    def stateful_plugin(self, root):
        d = os.path.join(root, "st")
        os.makedirs(d, mode=0o755)
        make_stateful_bundle(os.path.join(d, "stateful.lv2"))
        write_manifest(d, "st", "stateful.lv2", [(STATEFUL, "stateful")])
        hash_manifest(d)
        return d

    def test_worker_state_preset_and_kill9(self):
        root = self.tmp.file("plugins")
        os.makedirs(root, mode=0o755)
        self.stateful_plugin(root)
        pstate = self.tmp.file("pstate")
        state_file = self.tmp.file("state.yaml")
        sock = self.tmp.file("s.sock")
        args = ["--backend", "null", "--socket", sock, "--state_file", state_file]
        config = self.config(root, pstate)
        d = self.start_aersd(config, args=args)
        # tone -6 dBFS * gain 0.5 (-6.02 dB) * stored 1 -> -12 dBFS
        wait_until(lambda: abs((self.peak_db(sock) or 0) + 12.04) < 0.1, 10, "-12 dBFS")
        # The log line of instantiate (outside run(): logged at once) names the options.
        d.wait_log(r"lv2 node 's': stateful: 48000 Hz, max block \d+")

        # latch -> run() schedules work -> the service thread runs it -> the
        # response (audio thread) makes stored = 0.5: -18 dBFS.
        self.assertEqual(self.ctl(sock, "set", "s", "latch", "true").returncode, 0)
        wait_until(lambda: abs((self.peak_db(sock) or 0) + 18.06) < 0.1, 10, "-18 dBFS")
        d.wait_log(r"lv2 node 's': stateful: stored 0\.500")  # logged from run(), queued
        # latch off (so a restart does not latch again), gain back to 1:
        # stored stays 0.5 -> -12 dBFS
        self.assertEqual(self.ctl(sock, "set", "s", "latch", "false").returncode, 0)
        self.assertEqual(self.ctl(sock, "set", "s", "gain", "1").returncode, 0)
        wait_until(lambda: abs((self.peak_db(sock) or 0) + 12.04) < 0.1, 10, "-12 dBFS again")
        # enumeration: mode is a choice of the scale point labels
        kinds = json.loads(self.ctl(sock, "kinds", "--json").stdout)["kinds"]
        st = [k for k in kinds if k["name"] == "st/stateful"][0]
        mode = [p for p in st["params"] if p["name"] == "mode"][0]
        self.assertEqual(mode["type"], "enum")
        self.assertEqual(mode["choices"], ["normal", "invert"])
        self.assertEqual([p["uri"] for p in st["presets"]], [STATEFUL + "#half"])
        self.assertEqual(st["presets"][0]["label"], "Half and inverted")
        latch = [p for p in st["params"] if p["name"] == "latch"][0]
        self.assertEqual(latch["type"], "bool")
        # No allocation on the audio thread with the LV2 node running.
        status = json.loads(self.ctl(sock, "status", "--json").stdout)
        self.assertEqual(int(status.get("rt_allocations", -1)), 0, status)

        # The state reaches the state directory (saved within a second).
        saved = os.path.join(pstate, "lv2-state", "s", "0.ttl")
        def saved_text():
            try:
                with open(saved) as f:
                    return f.read()
            except OSError:
                return ""
        wait_until(lambda: "0.5" in saved_text(), 10, "state saved")
        d.signal(signal.SIGKILL)
        d.wait_exit()

        # Restart: the graph (gain 1, persisted) and the plugin state (stored
        # 0.5) both come back: -12 dBFS, not -6.
        d2 = self.start_aersd(config, args=args, tag="again")
        wait_until(lambda: self.peak_db(sock) is not None, 10, "daemon back")
        wait_until(lambda: abs(self.peak_db(sock) + 12.04) < 0.1, 10, "-12 dBFS after kill -9")
        d2.stop()

    def test_preset_then_node_params(self):
        root = self.tmp.file("plugins-p")
        os.makedirs(root, mode=0o755)
        self.stateful_plugin(root)
        pstate = self.tmp.file("pstate-p")
        sock = self.tmp.file("p.sock")
        # The preset sets gain 0.5 and mode invert; no gain given: -12 dBFS.
        config = self.config(root, pstate, gain=None, preset=STATEFUL + "#half")
        d = self.start_aersd(config, args=["--backend", "null", "--socket", sock,
                                           "--state_file", self.tmp.file("state-p.yaml")])
        wait_until(lambda: abs((self.peak_db(sock) or 0) + 12.04) < 0.1, 10, "preset gain")
        graph = self.ctl(sock, "graph")
        self.assertIn("preset " + STATEFUL + "#half", graph.stdout)
        # bash completion offers the kind's presets (client/completion/aersctl.bash).
        from test_completion import complete
        self.assertEqual(complete([AERSCTL, "--socket", sock, "add", "s9", "st/stateful",
                                   "--preset", ""]), [STATEFUL + "#half"])
        # A node's own value wins over the preset's.
        r = self.ctl(sock, "add", "s2", "st/stateful", "--preset", STATEFUL + "#half",
                     "--param", "gain=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        # An unknown preset is refused, naming the field and the presets there are.
        r = self.ctl(sock, "add", "s3", "st/stateful", "--preset", "urn:nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("preset", r.stderr)
        self.assertIn(STATEFUL + "#half", r.stderr)
        self.assertEqual(self.ctl(sock, "health").stdout.strip(), "SERVING")
        d.stop()

    def test_every_refusal_is_audited_and_the_daemon_serves(self):
        root = self.tmp.file("plugins-r")
        os.makedirs(root, mode=0o755)
        self.stateful_plugin(root)
        expected = {}

        def variant(name, code, mutate, bundle_name="stateful.lv2", plugins=None):
            d = os.path.join(root, name)
            os.makedirs(d, mode=0o755)
            b = make_stateful_bundle(os.path.join(d, bundle_name))
            write_manifest(d, name, bundle_name, plugins or [(STATEFUL, "stateful")])
            hash_manifest(d)
            mutate(d, b)
            expected[name] = code

        def append(path, text):
            with open(path, "a") as f:
                f.write(text)

        # A .ttl changed after hashing.
        variant("ttl-changed", "hash_mismatch",
                lambda d, b: append(os.path.join(b, "stateful.ttl"), "\n# changed\n"))
        # The library changed after hashing.
        variant("lib-changed", "hash_mismatch",
                lambda d, b: append(os.path.join(b, "stateful.so"), "\0" * 8))

        # An extra file in the bundle.
        def extra(d, b):
            with open(os.path.join(b, "extra.ttl"), "w") as f:
                f.write("# not in the hash\n")
            os.chmod(os.path.join(b, "extra.ttl"), 0o644)
        variant("extra-file", "hash_mismatch", extra)

        # A hidden file (refused whatever the hash says).
        def hidden(d, b):
            with open(os.path.join(b, ".hidden"), "w") as f:
                f.write("x")
        variant("hidden-file", "bundle_entry", hidden)

        # The library is a symlink to a file outside the allowed directories.
        def outside(d, b):
            lib = os.path.join(d, "elsewhere.so")
            shutil.move(os.path.join(b, "stateful.so"), lib)
            os.symlink(lib, os.path.join(b, "stateful.so"))
        variant("lib-outside", "bundle_entry", outside)

        # lv2:binary names a library outside the bundle (as calf's does).
        def binary_outside(d, b):
            lib = os.path.join(d, "elsewhere.so")
            shutil.copy(os.path.join(b, "stateful.so"), lib)
            path = os.path.join(b, "manifest.ttl")
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace("<stateful.so>", f"<file://{lib}>"))
            hash_manifest(d)
        variant("binary-outside", "module_outside_allowed_dirs", binary_outside)

        # A bundle given by an absolute path outside the allowed directories.
        def absolute(d, b):
            with open(os.path.join(d, "manifest.yaml")) as f:
                text = f.read()
            with open(os.path.join(d, "manifest.yaml"), "w") as f:
                f.write(text.replace("bundle: stateful.lv2", f"bundle: {b}"))
        variant("bundle-outside", "module_outside_allowed_dirs", absolute)

        # A required feature this host does not provide.
        def feature(d, b):
            path = os.path.join(b, "stateful.ttl")
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace(
                    "lv2:requiredFeature urid:map , work:schedule ;",
                    "lv2:requiredFeature urid:map , work:schedule , "
                    "<http://lv2plug.in/ns/ext/data-access> ;"))
            hash_manifest(d)
        variant("feature", "lv2_unsupported", feature)

        # A URI the bundle does not describe.
        variant("uri-missing", "lv2_uri_missing", lambda d, b: None,
                plugins=[("urn:aers:lv2:nothing", "nothing")])

        audit = self.tmp.file("audit.jsonl")
        pstate = self.tmp.file("pstate-r")
        sock = self.tmp.file("r.sock")
        config = self.config(root, pstate, audit=audit)
        d = self.start_aersd(config, args=["--backend", "null", "--socket", sock,
                                           "--state_file", self.tmp.file("state-r.yaml")])
        wait_until(lambda: self.peak_db(sock) is not None, 10, "daemon serving")
        plugins = json.loads(self.ctl(sock, "plugins", "--json").stdout)["plugins"]
        self.assertEqual([p["name"] for p in plugins], ["st"])
        self.assertEqual(self.ctl(sock, "health").stdout.strip(), "SERVING")
        with open(audit) as f:
            records = [json.loads(line) for line in f if line.strip()]
        for name, code in expected.items():
            with self.subTest(refusal=name):
                got = [r for r in records if r.get("plugin") == name and r.get("event") == "refused"]
                self.assertEqual(len(got), 1, records)
                self.assertEqual(got[0].get("code"), code, got[0])
                self.assertTrue(got[0].get("file"), got[0])
        # The good plugin still sounds (-12 dBFS) and its kind is usable.
        wait_until(lambda: abs(self.peak_db(sock) + 12.04) < 0.1, 10, "-12 dBFS")
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

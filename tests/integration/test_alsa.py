"""aersd on its ALSA backend, with real alsa-lib PCMs and no sound card.

- The ALSA `jack` PCM (libasound2-plugins, FLOAT_LE only) over a private
  `jackd -d dummy` gives real timing: aersd captures from one JACK client
  ("aerscap") and plays into another ("aersplay"); the probe plays into the
  first and records the second on JACK's frame clock.
- A `file` PCM in front of `plug:` of those writes exactly the bytes aersd
  plays, in any sample format, and its `infile` feeds known bytes to aersd's
  capture: format conversion is checked byte for byte.
- An xrun is made by freezing aersd's audio thread alone (cgroup v1 freezer:
  one thread, not the process). SIGSTOP cannot make one here: it stops the
  whole process, and with it the PCM's own JACK thread, i.e. the device's
  clock; that case is checked to resume cleanly.

Each test class writes its own asoundrc and passes it in ALSA_CONFIG_PATH.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import db, wait_until  # noqa: E402
from test_audio import rbj_lowpass  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
ALSA_CONF = "/usr/share/alsa/alsa.conf"
JACK_PCM = "/usr/lib/*/alsa-lib/libasound_module_pcm_jack.so"  # any architecture
FREEZER = "/sys/fs/cgroup/freezer"
LEVEL_DB = -20.0

ASOUNDRC = """
pcm.aersplay {{ type jack  name "aersplay"
  playback_ports {{ 0 "system:playback_1" 1 "system:playback_2" }} }}
pcm.aerscap {{ type jack  name "aerscap"
  capture_ports {{ 0 "system:capture_1" 1 "system:capture_2" }} }}
pcm.fplay {{ type file  slave.pcm "plug:aersplay"  file "{out}"  format raw }}
pcm.fcap {{ type file  slave.pcm "plug:aerscap"  file "/dev/null"  infile "{infile}"
  format raw }}
"""

# a -> trim (-6 dB) -> a_out; b -> lp (RBJ lowpass 1 kHz) -> b_out.
DUPLEX = """version: 1
engine: {{sample_rate_hz: 48000, period_frames: 256}}
backend:
  type: {type}
  alsa: {{{alsa}}}
inputs:
  - {{name: a, channels: 1}}
  - {{name: b, channels: 1}}
outputs:
  - {{name: a_out, channels: 1}}
  - {{name: b_out, channels: 1}}
nodes:
  - {{name: trim, kind: gain, channels: 1, params: {{gain_db: {gain}}}}}
  - {{name: {second}, kind: {second_kind}, channels: 1, params: {{{second_params}}}}}
routes:
  - {{from: a, to: trim}}
  - {{from: trim, to: a_out}}
  - {{from: b, to: {second}}}
  - {{from: {second}, to: b_out}}
"""

# Playback only: a 100 Hz tone at -6 dBFS into two outputs.
TONE = """version: 1
engine: {sample_rate_hz: 48000, period_frames: 256, crossfade_ms: 5}
backend:
  type: alsa
  alsa: {playback: aersplay, priority: 0}
outputs:
  - {name: out, channels: 2}
nodes:
  - {name: src, kind: tone, channels: 2, params: {freq_hz: 100, level_db: -6}}
  - {name: trim, kind: gain, channels: 2, params: {gain_db: 0}}
  - {name: lp, kind: biquad, channels: 2, params: {type: lowpass, freq_hz: 8000, q: 0.7071}}
  - {name: level, kind: meter, channels: 2}
routes:
  - {from: src, to: trim}
  - {from: trim, to: lp}
  - {from: lp, to: level}
  - {from: level, to: out}
"""


def duplex_config(alsa, gain=-6, second="lp", kind="biquad",
                  params="type: lowpass, freq_hz: 1000, q: 0.7071", type_="alsa"):
    return DUPLEX.format(type=type_, alsa=alsa, gain=gain, second=second, second_kind=kind,
                         second_params=params)


def have_alsa_jack():
    return shutil.which("jackd") and glob.glob(JACK_PCM)


class AlsaCase(aers_it.JackTestCase):
    """A jackd, an asoundrc and helpers for aersd on the ALSA backend."""

    tag = "alsa"

    @classmethod
    def setUpClass(cls):
        if not have_alsa_jack():
            raise unittest.SkipTest("jackd or the ALSA jack PCM (libasound2-plugins) missing")
        super().setUpClass()
        cls.out_raw = cls.tmp.file("out.raw")
        cls.in_raw = cls.tmp.file("in.raw")
        cls.asoundrc = cls.tmp.file("asoundrc")
        with open(cls.asoundrc, "w") as f:
            f.write(ASOUNDRC.format(out=cls.out_raw, infile=cls.in_raw))

    @classmethod
    def alsa_env(cls):
        return {"ALSA_CONFIG_PATH": f"{ALSA_CONF}:{cls.asoundrc}",
                "JACK_DEFAULT_SERVER": cls.jack.name, "JACK_NO_AUDIO_RESERVATION": "1"}

    @classmethod
    def start_alsa(cls, text, tag, args=(), ready=True):
        path = cls.tmp.file(f"{tag}.yaml")
        with open(path, "w") as f:
            f.write(text)
        d = aers_it.Aersd(cls.tmp, path, args=list(args), env=cls.alsa_env(), tag=tag)
        d.socket = cls.tmp.file(f"{tag}.sock")
        d.config = path
        cls._daemons.append(d)
        if ready:
            d.wait_log(r"audio running")
        return d

    def ctl(self, d, *args, check=0):
        out = subprocess.run([AERSCTL, "--socket", d.socket, *args], capture_output=True,
                             text=True, timeout=30)
        if check is not None:
            self.assertEqual(out.returncode, check, f"aersctl {args}: {out.stdout}{out.stderr}")
        return out

    def status(self, d):
        return json.loads(self.ctl(d, "status", "--json").stdout)

    def record_duplex(self, plays, seconds=0.5, name="itprobe"):
        tos = [f"aerscap:in_{i:03d}" for i in range(len(plays))]
        # The jack PCM's clients re-register their ports when aersd recovers
        # its device from an xrun (a loaded host): a probe that finds a port
        # missing at that moment tries again.
        for attempt in range(4):
            try:
                return self.jack.record(self.tmp, plays=plays, tos=tos,
                                        froms=["aersplay:out_000", "aersplay:out_001"],
                                        seconds=seconds, settle=0.3, name=f"{name}{attempt}")
            except AssertionError as e:
                if "cannot connect" not in str(e) or attempt == 3:
                    raise
                print(f"{name}: {e}; retrying", file=sys.stderr)
                time.sleep(0.5)


    def record_clean(self, d, plays, name):
        """record_duplex, again (up to four times) while aersd's device had
        an xrun during the recording (a loaded host): such a recording
        measures the host, not aersd."""
        for attempt in range(4):
            before = int(self.status(d).get("xruns", 0))
            rec = self.record_duplex(plays, name=f"{name}{attempt}")
            if int(self.status(d).get("xruns", 0)) == before:
                break
            print(f"{name}: aersd xrun during recording {attempt + 1}; retrying", file=sys.stderr)
        return rec


class AlsaDuplexTest(AlsaCase):
    """Capture and playback through the jack PCM: the signal, status, xruns."""

    tag = "alsa-duplex"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.audit = cls.tmp.file("audit.jsonl")
        cls.aersd = cls.start_alsa(
            duplex_config("playback: aersplay, capture: aerscap, periods: 3, priority: 0"),
            "duplex", args=["--audit_log", cls.audit])

    def check_gain(self, name):
        rec = self.record_clean(self.aersd, [f"sine:1000:{LEVEL_DB}", f"sine:200:{LEVEL_DB}"],
                                name)
        amp, _ = rec.tone(0, 1000)
        self.assertAlmostEqual(db(amp) - LEVEL_DB, -6.0, delta=0.05)
        return rec

    def test_01_gain_and_biquad_on_the_recorded_signal(self):
        rec = self.check_gain("gain")
        amp, phase = rec.tone(1, 200)
        h = rbj_lowpass(200, 1000, 0.7071, rec.rate)
        self.assertAlmostEqual(db(amp) - LEVEL_DB, db(abs(h)), delta=0.05)

    def test_02_status_names_the_device(self):
        st = wait_until(lambda: (s := self.status(self.aersd)).get("alsa", {}).get(
            "delay_frames", "-1") not in ("-1", -1) and s, 10, "a measured delay")
        self.assertEqual(st["backend"], "alsa")
        self.assertTrue(st.get("audio_running"))
        self.assertEqual(st["period_frames"], 256)
        a = st["alsa"]
        self.assertEqual((a["playback"], a["capture"], a["format"]),
                         ("aersplay", "aerscap", "FLOAT_LE"))
        self.assertEqual((a["periods"], a["buffer_frames"]), (3, 768))
        delay = int(a["delay_frames"])
        self.assertGreater(delay, 0)
        self.assertLessEqual(delay, 768 + 256)
        self.assertIn("aersplay", st["backend_detail"])
        self.assertEqual({l["output"] for l in st["latency"]}, {"a_out", "b_out"})
        # aersd_rtcheck: conversion, the graph and the PCM writes allocate nothing.
        self.assertEqual(int(st.get("rt_allocations", -1)), 0)
        out = self.ctl(self.aersd, "status").stdout
        self.assertIn("alsa: playback aersplay  capture aerscap  format FLOAT_LE  3 periods", out)

    def test_03_xrun_counted_reported_and_recovered(self):
        if not os.access(os.path.join(FREEZER, "tasks"), os.W_OK):
            self.skipTest("no writable cgroup v1 freezer to stop the audio thread alone")
        pid = self.aersd.proc.pid
        tid = next(t for t in os.listdir(f"/proc/{pid}/task")
                   if open(f"/proc/{pid}/task/{t}/comm").read().strip() == "aers-alsa-rt")
        before = int(self.status(self.aersd).get("xruns", 0))
        watcher = subprocess.Popen([AERSCTL, "--socket", self.aersd.socket, "watch", "--json"],
                                   stdout=subprocess.PIPE, text=True)
        events = []

        def read():
            for line in watcher.stdout:
                e = json.loads(line)
                if "xrun" in e:  # other events may come first: skip them
                    events.append(e)
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.3)
        group = os.path.join(FREEZER, f"aers-it-{os.getpid()}")
        os.makedirs(group, exist_ok=True)
        try:
            with open(os.path.join(group, "tasks"), "w") as f:
                f.write(tid)
            with open(os.path.join(group, "freezer.state"), "w") as f:
                f.write("FROZEN")
            time.sleep(0.2)  # 10 periods: the 3-period buffer runs dry
            with open(os.path.join(group, "freezer.state"), "w") as f:
                f.write("THAWED")
        finally:
            with open(os.path.join(FREEZER, "tasks"), "w") as f:
                f.write(tid)
            os.rmdir(group)
        reader.join(timeout=10)
        watcher.terminate()
        watcher.communicate(timeout=10)
        self.assertTrue(events, "no xrun event within 10 s")
        st = self.status(self.aersd)
        self.assertGreater(int(st.get("xruns", 0)), before)
        self.assertTrue(st.get("audio_running"))
        self.assertEqual(int(st.get("backend_restarts", 0)), 0, "an xrun is not a device loss")
        self.aersd.wait_log(r"xrun")
        self.check_gain("after-xrun")

    def test_04_sigstop_of_the_whole_process_resumes(self):
        self.aersd.signal(signal.SIGSTOP)
        time.sleep(0.3)
        self.aersd.signal(signal.SIGCONT)
        self.check_gain("after-sigstop")
        self.assertIsNone(self.aersd.proc.poll())

    def test_05_port_change_the_device_cannot_take_is_refused_without_a_gap(self):
        rev = json.loads(self.ctl(self.aersd, "graph", "--json").stdout)["revision"]
        wider = self.tmp.file("wider.yaml")
        with open(wider, "w") as f:
            f.write(open(self.aersd.config).read().replace(
                "  - {name: b_out, channels: 1}", "  - {name: b_out, channels: 1}\n"
                "  - {name: extra, channels: 1}"))
        silent = int(self.status(self.aersd).get("silent_cycles", 0))
        out = self.ctl(self.aersd, "apply", wider, check=None)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        # Known from the open device: refused without closing it.
        self.assertIn("ALSA playback device 'aersplay' does not take 3 channels (it takes 2 to 2)",
                      out.stderr)
        st = self.status(self.aersd)
        self.assertEqual(json.loads(self.ctl(self.aersd, "graph", "--json").stdout)["revision"],
                         rev)
        self.assertTrue(st.get("audio_running"))
        self.assertEqual(int(st.get("silent_cycles", 0)), silent, "a gap in the audio")
        self.assertEqual(int(st.get("backend_restarts", 0)), 0)
        self.check_gain("after-refused-port")
        # The same graph as a SIGHUP reload: refused, and audited as not applied.
        config_text = open(self.aersd.config).read()
        offset = len(self.aersd.log())
        try:
            with open(self.aersd.config, "w") as f:
                f.write(open(wider).read())
            self.aersd.signal(signal.SIGHUP)
            self.aersd.wait_log(r"reload rejected", after=offset)
        finally:
            with open(self.aersd.config, "w") as f:
                f.write(config_text)
        records = [json.loads(line) for line in open(self.audit)]
        reloads = [r for r in records if r.get("operation") == "reload"]
        self.assertTrue(reloads, records)
        self.assertNotEqual(reloads[-1]["result"], "OK", reloads[-1])
        self.assertIn("does not take 3 channels", reloads[-1].get("message", ""))
        self.assertEqual(json.loads(self.ctl(self.aersd, "graph", "--json").stdout)["revision"],
                         rev)


class AlsaDeviceLossTest(AlsaCase):
    """The device goes away (the JACK server under the jack PCM is killed)
    and comes back: aersd keeps running and recovers alone."""

    tag = "alsa-loss"

    def test_server_killed_and_restarted(self):
        d = self.start_alsa(duplex_config("playback: aersplay, capture: aerscap, priority: 0"),
                            "loss")
        watcher = subprocess.Popen([AERSCTL, "--socket", d.socket, "watch", "--json"],
                                   stdout=subprocess.PIPE, text=True)
        seen = set()

        def read():
            for line in watcher.stdout:
                seen.update(json.loads(line).keys())
        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.3)
        self.jack.kill()
        offset = d.wait_log(r"lost the device", timeout=20)
        wait_until(lambda: not self.status(d).get("audio_running"), 10, "audio to stop")
        self.assertIsNone(d.proc.poll())
        self.assertRegex(self.status(d)["backend_detail"],
                         r"device lost|waiting for the ALSA device: .*'aersplay'")
        # A graph the device did not take is not taken while it is away either.
        narrow = self.tmp.file("narrow.yaml")
        with open(narrow, "w") as f:
            f.write(open(d.config).read().replace("  - {name: b_out, channels: 1}\n", "")
                    .replace("  - {from: lp, to: b_out}\n", ""))
        out = self.ctl(d, "apply", narrow, check=None)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("does not take 1 channels (it takes 2 to 2)", out.stderr)
        self.jack.start()
        d.wait_log(r"device back", timeout=20, after=offset)
        st = wait_until(lambda: (s := self.status(d)).get("audio_running") and s, 10,
                        "audio to run again")
        self.assertEqual(int(st.get("backend_restarts", 0)), 1)
        rec = self.record_clean(d, [f"sine:1000:{LEVEL_DB}"], "back")
        self.assertAlmostEqual(db(rec.tone(0, 1000)[0]) - LEVEL_DB, -6.0, delta=0.05)
        wait_until(lambda: {"backend_lost", "backend_restored"} <= seen, 10,
                   "backend_lost and backend_restored events")
        watcher.terminate()
        watcher.communicate(timeout=10)


class AlsaFormatTest(AlsaCase):
    """Every sample format, byte for byte, through file PCMs (timed by JACK
    through plug:). Channel 0 passes unchanged; channel 1 is doubled, so its
    first 4800 frames (0.75) clip."""

    tag = "alsa-format"
    FRAMES = 480000  # 10 s of input: the run stops long before it ends
    CLIP_FRAMES = 4800

    # name: (array type, bytes per sample, full scale, packed 24-bit)
    FORMATS = {"s32": ("i", 4, 2 ** 31), "s24": ("i", 4, 2 ** 23), "s24_3": (None, 3, 2 ** 23),
               "s16": ("h", 2, 2 ** 15), "float": ("f", 4, 1.0)}

    def write_input(self, fmt):
        kind, width, scale = self.FORMATS[fmt]
        ch0 = []
        for i in range(self.FRAMES):
            v = ((i * 7919) % 4001 - 2000) / 2000.0 * 0.9 if i else 0.5  # nonzero first frame
            ch0.append(v)
        ch1 = [0.75 if i < self.CLIP_FRAMES else 0.0 for i in range(self.FRAMES)]
        if fmt == "float":
            data = array("f", [x for pair in zip(ch0, ch1) for x in pair])
            values = list(data)
        else:
            # Integer input: exactly representable as float (24 significant bits).
            step = 256 if fmt == "s32" else 1
            ints = []
            for a, b in zip(ch0, ch1):
                ints += [int(round(a * scale / step)) * step, int(round(b * scale))]
            values = ints
            if kind:
                data = array(kind, ints)
            else:
                data = bytearray()
                for v in ints:
                    data += (v & 0xFFFFFF).to_bytes(3, "little")
        with open(self.in_raw, "wb") as f:
            f.write(data.tobytes() if hasattr(data, "tobytes") else bytes(data))
        return values

    def read_output(self, fmt):
        kind, width, _ = self.FORMATS[fmt]
        raw = open(self.out_raw, "rb").read()
        if kind:
            a = array(kind)
            a.frombytes(raw[:len(raw) // width * width])
            return list(a)
        out = []
        for i in range(0, len(raw) - 2, 3):
            v = int.from_bytes(raw[i:i + 3], "little")
            out.append(v - (1 << 24) if v & 0x800000 else v)
        return out

    def run_format(self, fmt, dither=False, extra=""):
        values = self.write_input(fmt)
        if os.path.exists(self.out_raw):
            os.unlink(self.out_raw)
        alsa = (f"playback: fplay, capture: fcap, format: {fmt}, dither: "
                f"{'true' if dither else 'false'}, priority: 0{extra}")
        d = self.start_alsa(duplex_config(alsa, gain=0, second="twice", kind="gain",
                                          params="gain_db: 6.020599913279624"),
                            f"fmt-{fmt}-{dither}")
        # Past the clipping frames (and the 768 frames of prefill), before the input ends.
        st = wait_until(lambda: (s := self.status(d)) and int(s.get("cycles", 0)) > 60 and s,
                        20, "60 periods")
        d.stop()
        self.assertEqual(st["alsa"]["format"], {"s32": "S32_LE", "s24": "S24_LE",
                                                "s24_3": "S24_3LE", "s16": "S16_LE",
                                                "float": "FLOAT_LE"}[fmt])
        out = self.read_output(fmt)
        # The first period of output is the buffer's silence.
        first = next(i for i, v in enumerate(out) if v != 0)
        self.assertEqual(first % 2, 0)
        frames = min(len(out) // 2 - first // 2, 60 * 256 - 768)
        return values, out[first:], frames, st

    def test_integer_formats_exact_and_clipped(self):
        for fmt in ("s32", "s24", "s24_3", "s16"):
            with self.subTest(format=fmt):
                values, out, frames, st = self.run_format(fmt)
                _, _, scale = self.FORMATS[fmt]
                top, bottom = scale - 1, -scale
                for i in range(frames):
                    self.assertEqual(out[2 * i], values[2 * i], f"{fmt} frame {i} channel 0")
                    want = top if i < self.CLIP_FRAMES else 0
                    self.assertEqual(out[2 * i + 1], want, f"{fmt} frame {i} channel 1")
                self.assertEqual(int(st["alsa"].get("clipped_samples", 0)), self.CLIP_FRAMES)
                del bottom

    def test_float_passes_unchanged(self):
        values, out, frames, st = self.run_format("float")
        for i in range(frames):
            self.assertEqual(out[2 * i], values[2 * i])
            self.assertAlmostEqual(out[2 * i + 1], 1.5 if i < self.CLIP_FRAMES else 0.0,
                                   delta=1e-6)
        self.assertEqual(int(st["alsa"].get("clipped_samples", 0)), 0)

    def test_s16_tpdf_dither_within_one_lsb(self):
        values, out, frames, _ = self.run_format("s16", dither=True)
        errors = [out[2 * i] - values[2 * i] for i in range(frames)]
        self.assertLessEqual(max(abs(e) for e in errors), 1)
        # Dither is there: on integer input, +-1 LSB triangular dither moves
        # a sample when |d| > 0.5, a quarter of the time; around 0.
        moved = sum(1 for e in errors if e)
        self.assertGreater(moved, frames // 8)
        self.assertLess(moved, frames // 2)
        self.assertLess(abs(sum(errors)) / frames, 0.05)

    def test_channel_map_swaps_channels(self):
        values, out, frames, _ = self.run_format("s32", extra=", playback_map: [1, 0]")
        for i in range(0, frames, 97):
            self.assertEqual(out[2 * i + 1], values[2 * i])
            self.assertEqual(out[2 * i], 2 ** 31 - 1 if i < self.CLIP_FRAMES else 0)


class AlsaStormTest(AlsaCase):
    """Playback only: gRPC edits and SIGHUP reloads while a tone plays; the
    largest sample step on the recording stays that of the tone."""

    tag = "alsa-storm"

    def test_edits_and_reloads_are_crossfaded(self):
        aers_it.generate_stubs(self.tmp.path)
        import grpc
        import control_pb2 as cpb
        import control_pb2_grpc as rpc
        import random
        d = self.start_alsa(TONE, "storm")
        rng = random.Random(7)
        raw = self.tmp.file("storm.raw")
        rec_seconds = 4.0
        probe = subprocess.Popen(
            [aers_it.JACK_PROBE, "run", "--server", self.jack.name, "--name", "stormrec",
             "--record", "1", "--from", "aersplay:out_000", "--seconds", str(rec_seconds),
             "--settle", "0.2", "--raw", raw, "--timeout", "30"],
            stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        stub = rpc.ControlStub(grpc.insecure_channel(f"unix:{d.socket}"))
        branch = False
        edits = reloads = 0
        end = time.monotonic() + rec_seconds - 0.5
        while time.monotonic() < end:
            r = rng.random()
            if r < 0.6:
                stub.SetParameter(cpb.SetParameterRequest(
                    node="trim", param="gain_db", value=cpb.ParamValue(number=rng.uniform(-3, 0))))
            elif r < 0.95:
                if not branch:
                    ops = [cpb.EditOp(add_node=cpb.Node(name="side", kind="gain", channels=2, params={
                               "gain_db": cpb.ParamValue(number=-12)})),
                           cpb.EditOp(connect=cpb.Route(**{"from": "src", "to": "side"})),
                           cpb.EditOp(connect=cpb.Route(**{"from": "side", "to": "level"}))]
                else:
                    ops = [cpb.EditOp(remove_node="side")]
                stub.Edit(cpb.EditRequest(ops=ops))
                branch = not branch
            else:
                d.signal(signal.SIGHUP)  # the file's graph comes back: a route change too
                branch = False
                reloads += 1
                time.sleep(0.05)
            edits += 1
        out, _ = probe.communicate(timeout=60)
        self.assertEqual(probe.returncode, 0)
        rec = aers_it.Recording(json.loads(out.strip().splitlines()[-1]), raw)
        st = self.status(d)
        x = rec.channel(0)
        jump = max(abs(x[i] - x[i - 1]) for i in range(1, len(x)))
        natural = 2 * 3.141592653589793 * 100 / 48000 * (0.501 + 0.126)
        print(f"ALSA storm: {edits} edits ({reloads} reloads); max step {jump:.5f} "
              f"(natural {natural:.5f}); xruns {st.get('xruns', 0)}; rt allocations "
              f"{st.get('rt_allocations', 'n/a')}", file=sys.stderr)
        self.assertGreater(edits, 50)
        self.assertGreater(reloads, 0)
        self.assertEqual(int(st.get("rt_allocations", -1)), 0)
        if rec.gaps or rec.xruns or int(st.get("xruns", 0)):
            self.skipTest("JACK or the device dropped periods during the recording: the step "
                          "check would measure the host")
        self.assertLess(jump, 2.0 * natural, "discontinuity beyond the crossfade")


class AlsaErrorTest(AlsaCase):
    """Devices and settings that cannot work: a clear error, exit 5, nothing runs."""

    tag = "alsa-errors"

    def refused(self, text, tag, args=(), code=5):
        d = self.start_alsa(text, tag, args=args, ready=False)
        self.assertEqual(d.wait_exit(20), code, d.log())
        return d.log()

    def test_bad_devices_and_settings(self):
        cases = [
            ("nodevice", duplex_config("playback: no_such_pcm"),
             [r"ALSA playback device 'no_such_pcm' cannot be opened", "aplay -L"]),
            ("rate", duplex_config("playback: aersplay, sample_rate_hz: 44100"),
             [r"'aersplay' does not take 44100 Hz"]),
            ("format", duplex_config("playback: aersplay, format: s16"),
             [r"does not take format S16_LE; it takes FLOAT_LE"]),
            ("channels", duplex_config("playback: aersplay, playback_channels: 1"),
             [r"the graph has 2 output channels but backend.alsa.playback_channels is 1",
              "playback_map"]),
            ("map", duplex_config("playback: aersplay, playback_map: [0]"),
             [r"backend.alsa.playback_map lists 1 channels but the graph has 2 output channels"]),
            ("none", duplex_config("period_frames: 128"),
             [r"backend\.alsa: backend type alsa needs a device: .* or --alsa_playback"]),
            ("fraction", duplex_config("playback: aersplay, sample_rate_hz: 48000.4"),
             [r"is not a whole number"]),
        ]
        for tag, text, expect in cases:
            with self.subTest(case=tag):
                log = self.refused(text, tag, code=3 if tag == "fraction" else 5)
                for e in expect:
                    self.assertRegex(log, e)
        # Settings the config itself refuses (exit 3, with file:line:column).
        cases = [
            ("periods", duplex_config("playback: aersplay, periods: 1"),
             [r"backend\.alsa\.periods: periods = 1 is out of range; allowed 2 to 64"]),
            ("fmt", duplex_config("playback: aersplay, format: s8"),
             [r"backend\.alsa\.format: unknown sample format 's8'"]),
        ]
        for tag, text, expect in cases:
            with self.subTest(case=tag):
                log = self.refused(text, tag, code=3)
                for e in expect:
                    self.assertRegex(log, e)
        log = self.refused(duplex_config("playback: aersplay"), "flag",
                           args=["--alsa_periods", "many"])
        self.assertIn("--alsa_periods 'many' is not an integer", log)

    def test_device_from_the_flag_with_type_alsa_in_the_config(self):
        d = self.start_alsa(duplex_config("priority: 0"), "flagdev",
                            args=["--alsa_playback", "aersplay", "--alsa_capture", "aerscap"])
        self.assertEqual(self.status(d)["alsa"]["playback"], "aersplay")
        d.stop()

    def test_a_device_that_fails_at_once_is_retried_ever_more_slowly(self):
        # Opens (the file PCM), then every write fails: lost right after
        # each reopen. The back-off must grow, not restart.
        rc = self.tmp.file("badfile.asoundrc")
        with open(rc, "w") as f:
            f.write('pcm.badfile { type file  slave.pcm "plug:aersplay"  '
                    'file "/proc/no-such-dir/out.raw"  format raw }\n')
        path = self.tmp.file("badfile.yaml")
        with open(path, "w") as f:
            f.write(duplex_config("playback: badfile, priority: 0"))
        env = dict(self.alsa_env(), ALSA_CONFIG_PATH=f"{ALSA_CONF}:{self.asoundrc}:{rc}")
        d = aers_it.Aersd(self.tmp, path, env=env, tag="badfile")
        d.socket = self.tmp.file("badfile.sock")
        self._daemons.append(d)
        d.wait_log(r"lost the device")
        time.sleep(6)
        st = self.status(d)
        restarts = int(st.get("backend_restarts", 0))
        # 100, 200, 400, 800, 1600, 2000 ms...: at most ~7 in 6 s.
        self.assertLess(restarts, 12, st)
        self.assertLessEqual(d.log().count("[warning] ALSA backend: lost the device"), 2)
        d.stop()

    def test_auto_picks_alsa_without_jack_then_null(self):
        # No JACK server for the JACK backend (its own name), the jack PCM's
        # server for ALSA: auto falls through to ALSA.
        d = self.start_alsa(duplex_config("playback: aersplay, capture: aerscap, priority: 0",
                                          type_="auto"),
                            "auto", args=["--jack_server", "no-such-server"])
        d.wait_log(r"backend auto: the ALSA device opened; using ALSA")
        self.assertEqual(self.status(d)["backend"], "alsa")
        d.stop()
        d = self.start_alsa(duplex_config("playback: no_such_pcm", type_="auto"), "auto-null",
                            args=["--jack_server", "no-such-server"])
        log = d.log()
        self.assertIn("cannot be opened", log)
        self.assertIn("using the null backend", log)
        self.assertEqual(self.status(d)["backend"], "null")


if __name__ == "__main__":
    unittest.main(verbosity=2)

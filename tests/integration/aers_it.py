"""Helpers for aersd's integration tests: real jackd, real aersd, real probe.

Every test starts its own `jackd --no-realtime -n <unique name> -d dummy`, so
tests run in parallel. Nothing here sleeps for a fixed time where a condition
can be polled: wait_until() polls with a bounded deadline.

Environment (set by tests/meson.build; defaults for running by hand from a
build directory):
  AERSD        path to the aersd binary
  JACK_PROBE   path to tests/integration/jack_probe
  AERS_SOURCE_ROOT   the source tree (for configs)
  AERS_HAVE_SYSTEMD  "1" if aersd was built with libsystemd
"""

import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from array import array

SOURCE_ROOT = os.environ.get(
    "AERS_SOURCE_ROOT",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
AERSD = os.environ.get("AERSD", "aersd")
JACK_PROBE = os.environ.get("JACK_PROBE", "jack_probe")
HAVE_SYSTEMD = os.environ.get("AERS_HAVE_SYSTEMD", "1") == "1"
CONFIGS = os.path.join(SOURCE_ROOT, "tests", "integration", "configs")
PROTO_DIR = os.path.join(SOURCE_ROOT, "proto")
RATE = 48000
PERIOD = 256

_counter = itertools.count()


def unique_name(tag):
    """A JACK server name no other test (or test run) uses."""
    return f"aersit-{tag}-{os.getpid()}-{next(_counter)}"


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a truthy value; returns that value.
    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def db(x):
    return 20.0 * math.log10(x) if x > 0 else -math.inf


class TempDir:
    def __init__(self, tag):
        self.path = tempfile.mkdtemp(prefix=f"aers-it-{tag}-")

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        if os.environ.get("AERS_IT_KEEP"):
            print(f"kept {self.path}", file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)


class JackServer:
    """A jackd with the dummy driver under a unique server name."""

    def __init__(self, tmp, tag, period=PERIOD):
        self.name = unique_name(tag)
        self.period = period
        self.tmp = tmp
        self.proc = None
        self.generation = 0

    def start(self, timeout=15.0):
        self.generation += 1
        log = open(self.tmp.file(f"jackd-{self.generation}.log"), "w")
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self.proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy",
             "-r", str(RATE), "-p", str(self.period)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout,
                   f"jackd {self.name} to answer")
        if self.proc.poll() is not None:
            raise AssertionError(f"jackd exited early:\n{self.log()}")
        return self

    def _answers(self):
        return subprocess.run([JACK_PROBE, "ports", "--server", self.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=10).returncode == 0

    def kill(self):
        """SIGKILL: the server vanishes without telling its clients."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self):
        path = self.tmp.file(f"jackd-{self.generation}.log")
        return open(path).read() if os.path.exists(path) else ""

    # --- JACK graph queries (through the probe) ---------------------------

    def ports(self):
        """{port name: {"direction", "connections", "capture", "playback"}}."""
        for _ in range(5):  # a loaded server may refuse a client now and then
            out = subprocess.run([JACK_PROBE, "ports", "--server", self.name],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"jack_probe ports failed: {out.stderr}")
        result = {}
        for line in out.stdout.splitlines():
            port = json.loads(line)
            result[port["name"]] = port
        return result

    def client_exists(self, name):
        out = subprocess.run([JACK_PROBE, "has-client", name, "--server", self.name],
                             capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout)["exists"]

    def record(self, tmp, plays=(), tos=(), froms=(), record=0, seconds=0.5, settle=0.3,
               name="itprobe", timeout=20.0):
        """Runs the probe: plays signals, records ports; returns a Recording.

        A recording during which JACK reported an xrun, or whose frame clock
        jumped, is not a clean measurement of aersd (a loaded CI machine runs
        jackd without real-time priority): it is retried a few times."""
        for attempt in range(6):
            rec = self._record_once(tmp, plays, tos, froms, record, seconds, settle, name,
                                    timeout)
            if rec.xruns == 0 and rec.gaps == 0:
                return rec
            print(f"recording {attempt + 1}: {rec.xruns} xruns, {rec.gaps} clock jumps; "
                  "retrying", file=sys.stderr)
        return rec

    def _record_once(self, tmp, plays, tos, froms, record, seconds, settle, name, timeout):
        raw = tmp.file(f"rec-{next(_counter)}.raw")
        cmd = [JACK_PROBE, "run", "--server", self.name, "--name", name,
               "--seconds", str(seconds), "--settle", str(settle), "--raw", raw,
               "--timeout", str(timeout)]
        for i, p in enumerate(plays):
            cmd += ["--play", p]
            if tos:
                cmd += ["--to", tos[i]]
        for f in froms:
            cmd += ["--from", f]
        if record:
            cmd += ["--record", str(record)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
        if out.returncode != 0:
            raise AssertionError(f"jack_probe failed ({out.returncode}): {out.stderr}")
        meta = json.loads(out.stdout.strip().splitlines()[-1])
        return Recording(meta, raw)


class Recording:
    """Audio the probe recorded, on JACK's frame timeline."""

    def __init__(self, meta, raw_path):
        self.start_frame = meta["start_frame"]
        self.frames = meta["frames"]
        self.channels = meta["channels"]
        self.rate = meta["sample_rate_hz"]
        self.xruns = meta.get("xruns", 0)
        self.gaps = meta.get("gaps", 0)
        data = array("f")
        with open(raw_path, "rb") as f:
            data.frombytes(f.read())
        self.data = data

    def channel(self, ch):
        return self.data[ch::self.channels]

    def rms(self, ch):
        x = self.channel(ch)
        return math.sqrt(sum(v * v for v in x) / len(x))

    def tone(self, ch, freq_hz):
        """(amplitude, phase) of the component at freq_hz: a least-squares fit
        over a whole number of cycles, phase relative to sin(2*pi*f*frame/rate)
        on the absolute frame clock (the probe plays on the same clock)."""
        x = self.channel(ch)
        per = self.rate / freq_hz
        n = int(int(len(x) / per) * per)
        s = c = 0.0
        for i in range(n):
            t = ((self.start_frame + i) * freq_hz % self.rate) * (2.0 * math.pi / self.rate)
            s += x[i] * math.sin(t)
            c += x[i] * math.cos(t)
        return 2.0 * math.hypot(s, c) / n, math.atan2(c, s)

    def impulses(self, ch, threshold=0.5):
        """Absolute frame times of samples above threshold."""
        x = self.channel(ch)
        return [self.start_frame + i for i, v in enumerate(x) if abs(v) > threshold]


class Aersd:
    """A running aersd with its log captured to a file."""

    def __init__(self, tmp, config, server=None, args=(), env=None, tag="aersd", cwd=None):
        """config None: no --config flag. env["JOURNAL_STREAM"] = "@log" makes
        the log file look like the journal's stream. cwd: the working
        directory (relative paths in args are taken from it)."""
        self.tmp = tmp
        self.log_path = tmp.file(f"{tag}.log")
        self.stats_path = tmp.file(f"{tag}-stats.json")
        # Each daemon gets its own state file and control socket unless the
        # test names them (the defaults under /var/lib and /run are shared).
        own = []
        if "--state_file" not in args:
            own += ["--state_file", tmp.file(f"{tag}-state.yaml")]
        if "--socket" not in args:
            own += ["--socket", tmp.file(f"{tag}.sock")]
        self.socket = (args[list(args).index("--socket") + 1] if "--socket" in args
                       else tmp.file(f"{tag}.sock"))
        cmd = [AERSD] + (["--config", config] if config else []) + [
            "--stats_file", self.stats_path, "--stats_interval_ms", "100"] + own + list(args)
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("JOURNAL_STREAM", None)
        if server is not None:
            full_env["AERS_JACK_SERVER"] = server
        full_env.update(env or {})
        self._log = open(self.log_path, "w")
        st = os.fstat(self._log.fileno())
        self.log_dev_ino = f"{st.st_dev}:{st.st_ino}"  # what JOURNAL_STREAM would say
        if full_env.get("JOURNAL_STREAM") == "@log":
            full_env["JOURNAL_STREAM"] = self.log_dev_ino
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env, cwd=cwd)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, timeout=15.0, after=0):
        """Waits for a log line matching regex `pattern` past offset `after`;
        returns the offset just past the match."""
        rx = re.compile(pattern)

        def found():
            m = rx.search(self.log(), after)
            if m:
                return m.end()
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"aersd exited ({self.proc.returncode}) before logging {pattern!r}:\n"
                    + self.log())
            return None
        try:
            return wait_until(found, timeout, f"aersd to log {pattern!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- aersd log ---\n{self.log()}") from None

    def stats(self):
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"aersd did not exit within {timeout} s:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class JackTestCase(unittest.TestCase):
    """Base: a temp dir and a jackd per test class, torn down afterwards."""

    tag = "test"
    needs_jack = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir(cls.tag)
        cls.jack = JackServer(cls.tmp, cls.tag)
        cls._daemons = []
        if cls.needs_jack:
            if not shutil.which("jackd"):
                cls.tmp.cleanup()
                raise unittest.SkipTest("jackd is not installed")
            cls.jack.start()

    @classmethod
    def tearDownClass(cls):
        for d in cls._daemons:
            d.stop()
        cls.jack.stop()
        cls.tmp.cleanup()

    @classmethod
    def start_aersd(cls, config, args=(), env=None, tag="aersd", ready=True, cwd=None):
        d = Aersd(cls.tmp, config, server=cls.jack.name, args=args, env=env, tag=tag, cwd=cwd)
        cls._daemons.append(d)
        if ready:
            d.wait_log(r"audio running")
        return d


def generate_stubs(out_dir):
    """Python stubs from the project's proto files, made at test time (the
    control API, grpc.health.v1 and grpc.reflection.v1alpha); `out_dir` is
    put on sys.path."""
    protos = [(os.path.join(PROTO_DIR, "aers", "v1"), "control.proto"),
              (os.path.join(PROTO_DIR, "grpc", "health", "v1"), "health.proto"),
              (os.path.join(PROTO_DIR, "grpc", "reflection", "v1alpha"), "reflection.proto")]
    for inc, name in protos:
        subprocess.run(["protoc", f"-I{inc}", f"--python_out={out_dir}", f"--grpc_out={out_dir}",
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", name],
                       check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)

#!/usr/bin/python3
"""ALSA backend beside the JACK backend, in the same run (BENCHMARKS.md).

  /usr/bin/python3 tests/bench/alsa_bench.py [--build DIR] [--seconds N]
                                             [--periods 64,128,256] [--periods-per-buffer 3]

For each period size P: one `jackd -R -d dummy -r 48000 -p P` (real-time
where permitted) and, one after the other on it,
  jack  aersd as a JACK client (the baseline), and
  alsa  aersd on its ALSA backend over the ALSA jack PCM (duplex: capture
        from client "aerscap", playback into "aersplay"; P frames x 3),
both running configs/examples/reference-chain.yaml (gain + 8 biquads,
stereo) for N seconds (default 30) after a 2 s warm-up (SIGUSR1 restarts the
statistics). Reports per run, from aersd's --stats_file:
  - DSP time per period around Runner::Process (mean, p99, max; us) and the
    ALSA/JACK ratio of the means;
  - wake-up jitter of the ALSA audio thread: |time between period starts -
    P / 48 kHz| (mean, p99, max; us);
  - xruns;
  - round trip: an impulse played into aersd's input and recorded at its
    output on JACK's frame clock (first sample above 0.1; the chain's
    filters put its peak a few frames late on both backends); for ALSA, the
    frames beyond the JACK path and the device buffer (periods x P): the
    part that is aersd's (target 0).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import aers_it  # noqa: E402

ASOUNDRC = """
pcm.aersplay { type jack  name "aersplay"
  playback_ports { 0 "system:playback_1" 1 "system:playback_2" } }
pcm.aerscap { type jack  name "aerscap"
  capture_ports { 0 "system:capture_1" 1 "system:capture_2" } }
"""


def find_build(arg):
    for d in ([arg] if arg else [os.path.join(ROOT, "build")] +
              sorted(os.path.join(ROOT, n) for n in os.listdir(ROOT) if n.startswith("build-"))):
        if d and os.access(os.path.join(d, "daemon", "aersd"), os.X_OK):
            return d
    sys.exit("need a build dir with daemon/aersd and tests/jack_probe (--build DIR)")


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


def stats(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run(build, tmp, server, period, backend, seconds, nperiods):
    config = os.path.join(tmp, f"chain-{backend}.yaml")
    with open(os.path.join(ROOT, "configs", "examples", "reference-chain.yaml")) as f:
        text = f.read()
    with open(config, "w") as f:
        f.write(text)
    st = os.path.join(tmp, f"stats-{backend}-{period}.json")
    args = [os.path.join(build, "daemon", "aersd"), "--config", config, "--stats_file", st,
            "--stats_interval_ms", "200", "--state_file", os.path.join(tmp, f"st-{backend}.yaml"),
            "--socket", os.path.join(tmp, f"{backend}.sock"), "--backend", backend]
    env = dict(os.environ, JACK_DEFAULT_SERVER=server,
               ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{os.path.join(tmp, 'asoundrc')}")
    if backend == "alsa":
        args += ["--alsa_playback", "aersplay", "--alsa_capture", "aerscap",
                 "--alsa_period_frames", str(period), "--alsa_periods", str(nperiods)]
        ins, outs = "aerscap:in_000", "aersplay:out_000"
    else:
        args += ["--jack_server", server, "--jack_client_name", "aersjack"]
        ins, outs = "aersjack:in_1", "aersjack:out_1"
    log = open(os.path.join(tmp, f"aersd-{backend}-{period}.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: (s := stats(st)) and s["running"] and s["graph"]["cycles"] > 10, 20,
                   f"aersd {backend} to run")
        # Round trip first: an impulse every 4800 frames, recorded on the same clock.
        # A recording with an xrun (JACK's or aersd's) is not a measurement:
        # retried a few times.
        raw = os.path.join(tmp, "rt.raw")
        for _ in range(4):
            xruns_before = stats(st)["xruns"]
            out = subprocess.run(
                [os.path.join(build, "tests", "jack_probe"), "run", "--server", server, "--name",
                 f"rt{backend}", "--play", "impulse:4800", "--to", ins, "--from", outs,
                 "--seconds", "0.5", "--settle", "0.3", "--raw", raw, "--timeout", "20"],
                capture_output=True, text=True, timeout=40)
            rec = aers_it.Recording(json.loads(out.stdout.strip().splitlines()[-1]), raw)
            time.sleep(0.3)
            if rec.xruns == 0 and rec.gaps == 0 and stats(st)["xruns"] == xruns_before:
                break
        hits = rec.impulses(0, 0.1)
        offsets = sorted({f % 4800 for f in hits})
        time.sleep(2.0)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        base = stats(st)["dsp_us"]["periods"]
        time.sleep(seconds)
        s = stats(st)
        return {"dsp": s["dsp_us"], "jitter": s.get("wake_jitter_us", {}), "xruns": s["xruns"],
                "periods": s["dsp_us"]["periods"], "base": base, "offsets": offsets,
                "buffer": s.get("alsa", {}).get("buffer_frames", 0)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--periods", default="64,128,256")
    ap.add_argument("--periods-per-buffer", type=int, default=3)
    a = ap.parse_args()
    build = find_build(a.build)
    tmp = tempfile.mkdtemp(prefix="aers-alsa-bench-")
    with open(os.path.join(tmp, "asoundrc"), "w") as f:
        f.write(ASOUNDRC)
    rows = []
    for period in (int(p) for p in a.periods.split(",")):
        server = f"aers-alsa-bench-{os.getpid()}-{period}"
        jlog = open(os.path.join(tmp, f"jackd-{period}.log"), "w")
        jackd = subprocess.Popen(["jackd", "-R", "-n", server, "-d", "dummy", "-r", "48000",
                                  "-p", str(period)], stdout=jlog, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"))
        try:
            wait_until(lambda: subprocess.run(
                [os.path.join(build, "tests", "jack_probe"), "ports", "--server", server],
                capture_output=True).returncode == 0, 15, "jackd")
            res = {b: run(build, tmp, server, period, b, a.seconds, a.periods_per_buffer)
                   for b in ("jack", "alsa")}
        finally:
            jackd.terminate()
            jackd.wait(timeout=20)
            jlog.close()
        rows.append((period, res))
        j, l = res["jack"], res["alsa"]
        ratio = l["dsp"]["mean"] / j["dsp"]["mean"] if j["dsp"]["mean"] else float("nan")
        print(f"P={period}: jack DSP mean {j['dsp']['mean']:.1f} p99 {j['dsp']['p99']:.1f} max "
              f"{j['dsp']['max']:.1f} us, xruns {j['xruns']}, round trip {j['offsets']} | alsa DSP "
              f"mean {l['dsp']['mean']:.1f} p99 {l['dsp']['p99']:.1f} max {l['dsp']['max']:.1f} us "
              f"(x{ratio:.2f}), jitter mean {l['jitter'].get('mean', 0):.1f} p99 "
              f"{l['jitter'].get('p99', 0):.1f} max {l['jitter'].get('max', 0):.1f} us, xruns "
              f"{l['xruns']}, round trip {l['offsets']} frames, buffer {l['buffer']}",
              file=sys.stderr)
    print("\n| period | backend | DSP mean us | p99 | max | ALSA/JACK mean | wake jitter mean/p99/max us"
          " | xruns | round trip frames | beyond device buffer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for period, res in rows:
        j, l = res["jack"], res["alsa"]
        for name, r in (("jack", j), ("alsa", l)):
            ratio = f"{l['dsp']['mean'] / j['dsp']['mean']:.2f}" if name == "alsa" else "1.00"
            jit = (f"{r['jitter'].get('mean', 0):.1f} / {r['jitter'].get('p99', 0):.1f} / "
                   f"{r['jitter'].get('max', 0):.1f}" if name == "alsa" else "-")
            rt = str(min(r["offsets"])) if r["offsets"] else "?"
            beyond = (str(min(l["offsets"]) - min(j["offsets"]) - l["buffer"])
                      if name == "alsa" and l["offsets"] and j["offsets"] else "-")
            print(f"| {period} | {name} | {r['dsp']['mean']:.1f} | {r['dsp']['p99']:.1f} | "
                  f"{r['dsp']['max']:.1f} | {ratio} | {jit} | {r['xruns']} | {rt} | {beyond} |")


if __name__ == "__main__":
    main()

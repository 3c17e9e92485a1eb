"""aersd survives its JACK server going away and reconnects on its own.

jackd is killed (SIGKILL: no goodbye to its clients) while aersd runs; aersd
keeps running; a new jackd under the same name comes up; aersd re-opens its
client, re-registers its ports, restores its connections and audio flows
again, with no operator. Then the same with an orderly jackd shutdown, and a
new server with another period size and a config reloaded while no server
was there.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, db, wait_until  # noqa: E402

CLIENT = "aers-ports"


class ReconnectTest(aers_it.JackTestCase):
    tag = "reconnect"

    def check_audio(self, gain_db):
        # The probe connects nothing itself: aersd's auto-connect must do it.
        rec = self.jack.record(self.tmp, plays=["sine:1000:-20"], record=1,
                               seconds=0.3, settle=0.2, timeout=15)
        amp, _ = rec.tone(0, 1000)
        self.assertAlmostEqual(db(amp) + 20, gain_db, delta=0.05)

    def check_system_connections(self):
        def connected():
            p = self.jack.ports()
            return (p.get(f"{CLIENT}:main_1", {}).get("connections") == ["system:capture_1"] and
                    p.get(f"{CLIENT}:main_out_2", {}).get("connections") ==
                    ["system:playback_2"])
        wait_until(connected, 15, "aersd's ports connected to the system ports again")

    def test_server_killed_and_restarted(self):
        config = self.tmp.file("ports.yaml")
        shutil.copy(os.path.join(CONFIGS, "ports.yaml"), config)
        aersd = self.start_aersd(config)
        self.addCleanup(aersd.stop)  # the tests share the server and the probe
        gain_db = 6.0
        self.check_audio(gain_db)
        offset = 0
        for how, stop in (("SIGKILL", self.jack.kill), ("SIGTERM", self.jack.stop)):
            with self.subTest(server_stopped_by=how):
                stop()
                offset = aersd.wait_log(r"shut our client down", after=offset)
                # Still alive while there is no server.
                wait_until(lambda: aersd.stats() and not aersd.stats()["running"], 10,
                           "aersd to report audio stopped")
                self.assertIsNone(aersd.proc.poll())
                if how == "SIGTERM":
                    # A reload while there is no server: applied now, heard
                    # when the server is back.
                    with open(config) as f:
                        text = f.read().replace("gain_db: 6}", "gain_db: 3}")
                    with open(config, "w") as f:
                        f.write(text)
                    aersd.signal(signal.SIGHUP)
                    offset = aersd.wait_log(r"reloaded: revision 2", after=offset)
                    gain_db = 3.0
                # The second server runs another period size: aersd follows it.
                self.jack.period = 256 if how == "SIGKILL" else 512
                self.jack.start()
                offset = aersd.wait_log(r"reconnected; audio flows again", after=offset)
                self.check_system_connections()
                self.check_audio(gain_db)
                self.assertEqual(aersd.stats()["period_frames"], self.jack.period)
        stats = wait_until(lambda: (s := aersd.stats()) and s["restarts"] == 2 and s, 10,
                           "stats to count two restarts")
        self.assertTrue(stats["running"])

    def test_server_stopped_again_and_again_with_reloads_between(self):
        # jack2 closes a client by cancelling its notification thread; one
        # cancelled while it handled the stopping server's last
        # notifications left libjack's lock taken, and the next close (and
        # the reload waiting for the port lock) hung for good. Many orderly
        # stops, each with a reload while no server runs, then audio.
        config = self.tmp.file("ports-again.yaml")
        shutil.copy(os.path.join(CONFIGS, "ports.yaml"), config)
        aersd = self.start_aersd(config, tag="aersd-again")
        self.addCleanup(aersd.stop)
        offset = 0
        gain_db = 6.0
        for i in range(12):
            self.jack.stop()
            offset = aersd.wait_log(r"shut our client down", after=offset)
            old, new = ("gain_db: 6}", "gain_db: 3}") if gain_db == 6.0 else \
                ("gain_db: 3}", "gain_db: 6}")
            with open(config) as f:
                text = f.read().replace(old, new)
            with open(config, "w") as f:
                f.write(text)
            gain_db = 9.0 - gain_db
            aersd.signal(signal.SIGHUP)
            offset = aersd.wait_log(rf"reloaded: revision {i + 2}\b", after=offset)
            self.jack.start()
            offset = aersd.wait_log(r"reconnected; audio flows again", after=offset)
        self.check_system_connections()
        self.check_audio(gain_db)
        self.assertEqual(aersd.stats()["restarts"], 12)

    def test_a_stopped_server_is_reported_until_its_periods_run_again(self):
        # A server stopped (SIGSTOP, a debugger) or hung keeps its sockets
        # open: nothing tells its clients, and aersd's backend still says it
        # runs. No period for a second is reported as audio stopped.
        config = self.tmp.file("ports-stall.yaml")
        shutil.copy(os.path.join(CONFIGS, "ports.yaml"), config)
        aersd = self.start_aersd(config, tag="aersd-stall")
        self.addCleanup(aersd.stop)
        ctl = [os.environ["AERSCTL"], "--socket", aersd.socket]
        watch_log = self.tmp.file("stall-watch.log")
        with open(watch_log, "w") as out:
            watch = subprocess.Popen(ctl + ["watch"], stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(watch.wait, 10)
        self.addCleanup(watch.terminate)
        wait_until(lambda: aersd.stats() and aersd.stats()["running"], 10, "audio running")
        self.jack.proc.send_signal(signal.SIGSTOP)
        try:
            offset = aersd.wait_log(r"jack: no period for 1\.\d s although the backend runs")
            stats = wait_until(lambda: (s := aersd.stats()) and not s["running"] and s, 10,
                               "the stats file to say audio stopped")
            self.assertRegex(stats["detail"], r"^stalled: no period for \d+\.\d s \(server ")
            status = json.loads(subprocess.run(ctl + ["status", "--json"], capture_output=True,
                                               text=True, timeout=30, check=True).stdout)
            self.assertFalse(status.get("audio_running", False))
            self.assertIn("stalled: no period for", status["backend_detail"])
            health = subprocess.run(ctl + ["health"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(health.returncode, 0)
            self.assertIn("NOT_SERVING", health.stdout + health.stderr)
        finally:
            self.jack.proc.send_signal(signal.SIGCONT)
        aersd.wait_log(r"jack: periods run again after \d+\.\d s without one", after=offset)
        wait_until(lambda: (s := aersd.stats()) and s["running"], 10, "audio running again")
        self.assertEqual(subprocess.run(ctl + ["health"], capture_output=True,
                                        timeout=30).returncode, 0)
        self.check_audio(6.0)

        def events():
            with open(watch_log) as f:
                return f.read()
        wait_until(lambda: "backend restored" in events(), 10, "the restored event")
        text = events()
        self.assertRegex(text, r"backend lost: stalled: no period for \d+\.\d s")
        self.assertLess(text.index("backend lost"), text.index("backend restored"))
        self.assertEqual(aersd.stats()["restarts"], 0)  # the same client throughout


if __name__ == "__main__":
    unittest.main(verbosity=2)

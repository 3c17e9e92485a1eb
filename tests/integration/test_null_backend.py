"""The null backend runs the graph with no audio server, paced by the clock;
environment variables and flags choose the backend, config and log level."""

import math
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, db, wait_until  # noqa: E402

TONE = os.path.join(CONFIGS, "null_tone.yaml")
LEVEL_DB = -12.0


class NullBackendTest(aers_it.JackTestCase):
    tag = "null"
    needs_jack = False  # self.jack.name names a server nobody runs

    def no_server_env(self, **extra):
        env = {"JACK_DEFAULT_SERVER": self.jack.name}
        env.update(extra)
        return env

    def test_auto_without_server_runs_tone_into_meter(self):
        aersd = self.start_aersd(TONE, env=self.no_server_env(), tag="auto")
        # Each step of the choice is logged with its reason.
        self.assertRegex(aersd.log(), r"backend auto: .*no server answered.*\n.*"
                         r"backend auto: no ALSA device configured.*\n.*"
                         r"backend auto: using the null backend")

        def metered():
            s = aersd.stats()
            return s and s["running"] and s["meters"]["level"][0]["rms"] > 0 and s
        stats = wait_until(metered, 10, "a meter reading in the stats file")
        self.assertEqual(stats["backend"], "null")
        self.assertEqual(stats["period_frames"], 256)
        level = stats["meters"]["level"][0]
        self.assertAlmostEqual(db(level["rms"]), LEVEL_DB - db(math.sqrt(2)), delta=0.05)
        self.assertAlmostEqual(db(level["peak"]), LEVEL_DB, delta=0.05)

        # Paced by the clock: 48000 / 256 = 187.5 periods per second, over
        # at least 1.5 s between two documents (each stamped with the time
        # its counters were read). A period the thread starts more than a
        # period late is dropped and counted as an xrun, as a device would:
        # on a loaded machine the rate is taken over a window without one
        # (up to ten windows), and never faster than the clock.
        rates = []
        for _ in range(10):
            first = wait_until(aersd.stats, 5, "a stats document")
            last = wait_until(
                lambda: (s := aersd.stats()) and s["monotonic_s"] - first["monotonic_s"] >= 1.5
                and s, 10, "a stats document 1.5 s after the previous one")
            rate = ((last["graph"]["cycles"] - first["graph"]["cycles"])
                    / (last["monotonic_s"] - first["monotonic_s"]))
            rates.append(rate)
            self.assertLess(rate, 187.5 * 1.1, f"faster than the clock: {rates}")
            if last["xruns"] == first["xruns"]:
                break
        else:
            self.fail(f"no 1.5 s window without an xrun in ten: {rates}")
        self.assertAlmostEqual(rate, 187.5, delta=187.5 * 0.1, msg=f"windows: {rates}")
        self.assertEqual(aersd.stats()["graph"]["silent_cycles"], 0)

        aersd.signal(signal.SIGTERM)
        self.assertEqual(aersd.wait_exit(), 0)

    def test_environment_configures_and_flags_win(self):
        # Config path, backend and log level from the environment only.
        aersd = self.start_aersd(None, env=self.no_server_env(
            AERS_CONFIG_PATH=TONE, AERS_BACKEND="null", AERS_LOG_LEVEL="debug"), tag="env")
        self.assertIn("[debug]", aersd.log())
        self.assertNotIn("backend auto", aersd.log())
        self.assertEqual(aersd.stats()["backend"], "null")
        aersd.stop()

        # --backend beats AERS_BACKEND (jack would wait for a server forever).
        aersd = self.start_aersd(TONE, args=["--backend", "null"], tag="flag",
                                 env=self.no_server_env(AERS_BACKEND="jack"))
        self.assertEqual(wait_until(aersd.stats, 5, "stats")["backend"], "null")
        aersd.stop()

    def test_explicit_jack_without_server_keeps_waiting(self):
        aersd = self.start_aersd(TONE, args=["--backend", "jack"], ready=False, tag="wait",
                                 env=self.no_server_env())
        aersd.wait_log(r"retrying")
        s = wait_until(aersd.stats, 5, "stats")
        self.assertEqual(s["backend"], "jack")
        self.assertFalse(s["running"])
        self.assertIn("waiting for JACK server", s["detail"])
        aersd.signal(signal.SIGTERM)
        self.assertEqual(aersd.wait_exit(), 0)

    def test_bad_log_level_is_a_usage_error(self):
        aersd = self.start_aersd(TONE, ready=False, tag="badlevel",
                                 env=self.no_server_env(AERS_LOG_LEVEL="loud"))
        self.assertEqual(aersd.wait_exit(), 2)
        self.assertIn("unknown log level", aersd.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)

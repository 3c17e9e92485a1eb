"""aersd follows a JACK period-size change while it runs: the buffer-size
callback recompiles the plan off the audio thread, the audio thread swaps it
in, and the audio stays exact (gain, sample-accurate timing) at the new size,
smaller or larger, without a single period of silence."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, JACK_PROBE, db, wait_until  # noqa: E402
import subprocess  # noqa: E402

IMPULSE_EVERY = 4800


class PeriodChangeTest(aers_it.JackTestCase):
    tag = "period"

    def set_period(self, frames):
        out = subprocess.run([JACK_PROBE, "set-period", str(frames), "--server", self.jack.name],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def check_audio(self):
        rec = self.jack.record(self.tmp, plays=["sine:1000:-20", f"impulse:{IMPULSE_EVERY}"],
                               tos=["aersd:a", "aersd:d"], froms=["aersd:a_out", "aersd:d_out"],
                               seconds=0.4, settle=0.2)
        amp, _ = rec.tone(0, 1000)
        self.assertAlmostEqual(db(amp) + 20, -6.0, delta=0.05)
        hits = rec.impulses(1)
        self.assertTrue(hits)
        self.assertEqual({f % IMPULSE_EVERY for f in hits}, {100})

    def test_period_change(self):
        aersd = self.start_aersd(os.path.join(CONFIGS, "audio.yaml"))
        self.check_audio()
        offset = 0
        for frames in (128, 1024):
            with self.subTest(period_frames=frames):
                silent_before = aersd.stats()["graph"]["silent_cycles"]
                self.set_period(frames)
                offset = aersd.wait_log(rf"period is now {frames} frames", after=offset)
                wait_until(lambda: aersd.stats()["period_frames"] == frames, 5,
                           f"stats to show {frames} frames")
                self.check_audio()
                self.assertEqual(aersd.stats()["graph"]["silent_cycles"], silent_before)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Audio through aersd on a real JACK server (configs/audio.yaml).

One probe run plays a sine into `a` (gain -6 dB), two sines into `b`
(biquad lowpass 1 kHz), impulses into `c` (gain, meter, mixer: no latency)
and `d` (delay 100 frames), and records every output on JACK's frame clock.
"""

import cmath
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, db  # noqa: E402

LEVEL_DB = -20.0
IMPULSE_EVERY = 4800  # frames: 10 per second


def rbj_lowpass(freq_hz, f0_hz, q, rate):
    """Complex response of the RBJ cookbook lowpass at freq_hz."""
    w0 = 2 * math.pi * f0_hz / rate
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
    a = [1 + alpha, -2 * cw, 1 - alpha]
    z = cmath.exp(-1j * 2 * math.pi * freq_hz / rate)
    return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)


class AudioTest(aers_it.JackTestCase):
    tag = "audio"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.aersd = cls.start_aersd(os.path.join(CONFIGS, "audio.yaml"))
        cls.rec = cls.jack.record(
            cls.tmp,
            plays=[f"sine:1000:{LEVEL_DB}", f"sine:200:{LEVEL_DB}", f"sine:4000:{LEVEL_DB}",
                   f"impulse:{IMPULSE_EVERY}", f"impulse:{IMPULSE_EVERY}"],
            tos=["aersd:a", "aersd:b_1", "aersd:b_2", "aersd:c", "aersd:d"],
            froms=["aersd:a_out", "aersd:b_out_1", "aersd:b_out_2", "aersd:c_out",
                   "aersd:d_out"],
            seconds=0.6, settle=0.3)

    def test_gain_within_0_05_db(self):
        amp, _ = self.rec.tone(0, 1000)
        gain_db = db(amp) - LEVEL_DB
        self.assertAlmostEqual(gain_db, -6.0, delta=0.05)

    def test_biquad_lowpass_shapes_tones(self):
        amplitude = 10 ** (LEVEL_DB / 20)
        for ch, freq in ((1, 200), (2, 4000)):
            with self.subTest(freq_hz=freq):
                amp, phase = self.rec.tone(ch, freq)
                h = rbj_lowpass(freq, 1000, 0.7071, self.rec.rate)
                self.assertAlmostEqual(db(amp / amplitude), db(abs(h)), delta=0.05)
                # The phase shift is the filter's too (not just some attenuation).
                err = (phase - cmath.phase(h) + math.pi) % (2 * math.pi) - math.pi
                self.assertLess(abs(err), 0.01)
        # The 4 kHz tone is strongly attenuated, the 200 Hz one barely.
        self.assertLess(db(self.rec.tone(2, 4000)[0]) - LEVEL_DB, -20)
        self.assertGreater(db(self.rec.tone(1, 200)[0]) - LEVEL_DB, -0.5)

    def check_impulses(self, ch, expected_offset):
        hits = self.rec.impulses(ch)
        self.assertGreaterEqual(len(hits), 5, f"impulses found: {hits}")
        for frame in hits:
            self.assertEqual(frame % IMPULSE_EVERY, expected_offset,
                             f"impulse at frame {frame}: "
                             f"{frame % IMPULSE_EVERY} frames after it was played")
        x = self.rec.channel(ch)
        for frame in hits:
            self.assertAlmostEqual(x[frame - self.rec.start_frame], 1.0, delta=1e-4)

    def test_impulse_same_frame_through_non_delay_nodes(self):
        self.check_impulses(3, 0)

    def test_impulse_exactly_100_frames_later_through_delay(self):
        self.check_impulses(4, 100)

    def test_reported_jack_latency_follows_graph(self):
        ports = self.jack.ports()
        self.assertEqual(ports["aersd:d_out"]["capture"], [100, 100])
        self.assertEqual(ports["aersd:d"]["playback"], [100, 100])
        self.assertEqual(ports["aersd:c_out"]["capture"], [0, 0])
        self.assertEqual(ports["aersd:a"]["playback"], [0, 0])


if __name__ == "__main__":
    unittest.main(verbosity=2)

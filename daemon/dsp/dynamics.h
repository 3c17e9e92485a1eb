// Dynamics: the compressor's gain computer and the envelope arithmetic the
// `compressor`, `limiter` and `gate` kinds share.
//
// Source: D. Giannoulis, M. Massberg, J. D. Reiss, "Digital Dynamic Range
// Compressor Design - A Tutorial and Analysis", JAES 60(6), 2012: the
// soft-knee gain computer (their eq. 4) and the smooth branching peak
// detector in the log domain placed after the gain computer (their
// section 3.2 and figure 7, the configuration they recommend).
//
// Thread: any (pure functions, no allocation).
#pragma once

#include <cmath>

namespace aers::dsp {

/// Static curve of a compressor: output level (dB) for input level `x_db`
/// (dB), threshold `threshold_db` (dB), ratio `ratio` (>= 1) and knee width
/// `knee_db` (dB, 0 = hard knee):
///   x                                   2(x - T) < -W
///   x + (1/R - 1)(x - T + W/2)^2 / (2W)  |2(x - T)| <= W
///   T + (x - T)/R                       2(x - T) > W
inline double CompressorCurveDb(double x_db, double threshold_db, double ratio,
                                double knee_db) noexcept {
  const double over = x_db - threshold_db;
  if (2.0 * over < -knee_db) return x_db;
  if (knee_db > 0.0 && 2.0 * std::fabs(over) <= knee_db) {
    const double t = over + knee_db / 2.0;
    return x_db + (1.0 / ratio - 1.0) * t * t / (2.0 * knee_db);
  }
  return threshold_db + over / ratio;
}

/// One-pole coefficient for time constant `ms` (ms) at `rate_hz` (Hz):
/// exp(-1 / (tau fs)); a step reaches 1 - 1/e of its way after `ms`. 0 ms: 0.
inline double TimeConstantCoef(double ms, double rate_hz) noexcept {
  return ms <= 0.0 ? 0.0 : std::exp(-1000.0 / (ms * rate_hz));
}

/// Linear amplitude -> dB, with a floor of -200 dB for silence.
inline double AmplitudeToDb(double a) noexcept {
  return a <= 1e-10 ? -200.0 : 20.0 * std::log10(a);
}

}  // namespace aers::dsp

// Crossover design: Linkwitz-Riley and Butterworth band splits built from
// cascaded biquad sections (rt/biquad.h), for the `crossover` node kind.
//
// Sources: S. Butterworth, "On the Theory of Filter Amplifiers" (1930) for
// the pole positions; S. Linkwitz, "Active Crossover Networks for
// Noncoincident Drivers", JAES 24(1), 1976, for LR(2M) = Butterworth(M)
// squared; the all-pass compensation of lower bands follows from
// LP + HP = all-pass for LR (and for odd-order Butterworth).
//
// Thread: any (pure functions, they allocate: not for the audio thread).
#pragma once

#include <vector>

#include "rt/biquad.h"

namespace aers::dsp {

enum class CrossoverAlignment {
  kLinkwitzRiley,  ///< orders 2, 4, 8: Butterworth(order/2) squared; bands sum flat
  kButterworth,    ///< orders 1..8: -3 dB at the crossover frequency
};

/// Q of each second-order section of an analog Butterworth filter of
/// `order` (1..8), ascending: Q_k = 1 / (2 sin((2k - 1) pi / (2 order))),
/// k = 1 .. order/2 (order 3: 1.0; order 4: 0.5412, 1.3066). An odd order
/// adds one first-order section (not listed).
std::vector<double> ButterworthQs(int order);

/// The sections of a crossover band filter (lowpass or highpass) at
/// `freq_hz` (Hz). For Linkwitz-Riley of order 2M: the Butterworth(M)
/// sections twice.
std::vector<rt::BiquadParams> CrossoverFilter(CrossoverAlignment alignment, int order,
                                              bool highpass, double freq_hz);

/// The all-pass with which the bands below a crossover stay in phase with
/// the bands above it: LP + s*HP of that crossover, s = CrossoverHighpassSign.
/// Linkwitz-Riley 2M: D_M(-s)/D_M(s) (D_M the Butterworth(M) denominator);
/// odd Butterworth N: (1 + s^N)/D_N(s), the all-pass of the pole pairs at
/// k pi / N from the negative real axis, k odd (the others cancel). Even
/// Butterworth has no such all-pass (LP + HP is not all-pass): empty.
std::vector<rt::BiquadParams> CrossoverAllpass(CrossoverAlignment alignment, int order,
                                               double freq_hz);

/// +1, or -1 where the highpass is inverted so that LP + HP is all-pass
/// (Linkwitz-Riley with order/2 odd: LR2).
int CrossoverHighpassSign(CrossoverAlignment alignment, int order);

/// One band of a crossover at ascending `freqs_hz` (N - 1 frequencies, N
/// bands, band 0 the lowest): band i = HP(f_0..f_{i-1}) LP(f_i) AP(f_{i+1}..),
/// with the sign CrossoverHighpassSign^i.
struct CrossoverBand {
  std::vector<rt::BiquadParams> sections;
  /// For each section, the index into freqs_hz it follows.
  std::vector<int> crossover_index;
  int sign = 1;
};
std::vector<CrossoverBand> DesignCrossover(CrossoverAlignment alignment, int order,
                                           const std::vector<double>& freqs_hz);

/// Largest number of crossover frequencies of one node (9 bands).
inline constexpr int kMaxCrossovers = 8;

}  // namespace aers::dsp

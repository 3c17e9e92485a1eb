// The dither kind: output on the bits-deep grid, TPDF error statistics
// independent of the signal (Lipshitz, Wannamaker, Vanderkooy 1992), noise
// shaping that moves the error out of the low frequencies, no allocation.
#include <complex>
#include <numbers>

#include "common/process_alloc.h"
#include "common/rig.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;

std::vector<Signal> Dither(const Signal& x, int bits, const std::string& shaping = "none") {
  Rig rig(kRate, 256);
  rig.Apply(GraphBuilder()
                .Input("in", 1)
                .Node("d", "dither", 1, {{"bits", static_cast<double>(bits)}, {"shaping", shaping}})
                .Output("out", 1)
                .Chain({"in", "d", "out"})
                .Build());
  return rig.Run({x}, x.size());
}

struct Moments {
  double mean, power;  // in LSB, LSB^2
};

Moments ErrorMoments(const Signal& x, const Signal& y, int bits) {
  const double steps = std::ldexp(1.0, bits - 1);
  double sum = 0.0, sq = 0.0;
  for (size_t n = 0; n < x.size(); ++n) {
    const double e = (static_cast<double>(y[n]) - static_cast<double>(x[n])) * steps;
    sum += e;
    sq += e * e;
  }
  return {sum / static_cast<double>(x.size()), sq / static_cast<double>(x.size())};
}

TEST(Dither, EverySampleIsOnTheGrid) {
  for (int bits : {8, 16, 24}) {
    const Signal x = Sine(997.0, 0.9, 48000);
    const auto y = Dither(x, bits);
    const double steps = std::ldexp(1.0, bits - 1);
    for (size_t n = 0; n < y[0].size(); ++n) {
      const double k = static_cast<double>(y[0][n]) * steps;
      ASSERT_EQ(k, std::round(k)) << bits << " bits, frame " << n;
      ASSERT_LE(std::fabs(static_cast<double>(y[0][n]) - static_cast<double>(x[n])),
                2.0 / steps)  // within 1.5 LSB (rounding + dither) of the input
          << bits << " bits, frame " << n;
    }
  }
}

TEST(Dither, ErrorPowerIsAQuarterLsbSquaredWhateverTheSignal) {
  // Constant inputs at 0, 1/4 and 1/2 LSB off the grid: undithered rounding
  // would give error powers 0, 1/16 and 1/4 LSB^2; TPDF gives 1/4 for all,
  // with mean 0.
  const double lsb = std::ldexp(1.0, -15);
  for (double offset : {0.0, 0.25, 0.5, 0.8}) {
    const Signal x(96000, static_cast<float>((1000.0 + offset) * lsb));
    const auto y = Dither(x, 16);
    const Moments m = ErrorMoments(x, y[0], 16);
    EXPECT_NEAR(m.mean, 0.0, 0.01) << offset;
    EXPECT_NEAR(m.power, 0.25, 0.01) << offset;
  }
}

// Power of e between f_lo and f_hi (Hz), from its DFT at 1 Hz spacing over
// a 1 s window (frequencies sampled every 50 Hz, enough for white or shaped
// noise), relative units.
double BandPower(const Signal& x, const Signal& y, double f_lo, double f_hi) {
  double total = 0.0;
  for (double f = f_lo; f <= f_hi; f += 50.0) {
    std::complex<double> s = 0.0;
    const double w = -2.0 * std::numbers::pi * f / kRate;
    for (size_t n = 0; n < 48000; ++n) {
      s += (static_cast<double>(y[n]) - static_cast<double>(x[n])) * std::polar(1.0, w * n);
    }
    total += std::norm(s);
  }
  return total;
}

TEST(Dither, FirstOrderShapingMovesTheNoiseUp) {
  const Signal x = Sine(440.0, 0.3, 48000);
  const auto flat = Dither(x, 16, "none");
  const auto shaped = Dither(x, 16, "first_order");
  // |1 - e^-jw|^2 = 4 sin^2(w/2): at 1 kHz 0.017 (-17.6 dB), at 20 kHz 3.7 (+5.7 dB).
  const double low_gain =
      BandPower(x, shaped[0], 50.0, 1000.0) / BandPower(x, flat[0], 50.0, 1000.0);
  const double high_gain =
      BandPower(x, shaped[0], 18000.0, 22000.0) / BandPower(x, flat[0], 18000.0, 22000.0);
  EXPECT_LT(10.0 * std::log10(low_gain), -15.0);
  EXPECT_GT(10.0 * std::log10(high_gain), 4.0);
  // Still on the grid.
  for (float v : shaped[0])
    ASSERT_EQ(static_cast<double>(v) * 32768.0, std::round(static_cast<double>(v) * 32768.0));
}

TEST(Dither, FullScaleIsClampedToTheGrid) {
  const Signal x(4800, 1.0f);
  const auto y = Dither(x, 16);
  for (float v : y[0]) ASSERT_LE(static_cast<double>(v), 1.0 - std::ldexp(1.0, -15));
}

TEST(Dither, ProcessDoesNotAllocate) {
  EXPECT_EQ(AllocationsWhileProcessing("dither", 2, {{"shaping", std::string("first_order")}}), 0u);
}

}  // namespace
}  // namespace aers::test

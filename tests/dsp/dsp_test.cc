// Built-in node kinds against analytic expectations.
#include <complex>
#include <numbers>

#include "common/rig.h"
#include "dsp/meter.h"
#include "rt/biquad.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;

model::GraphSpec OneNode(const std::string& kind, std::map<std::string, model::ParamValue> params,
                         int channels = 1) {
  return GraphBuilder()
      .Input("in", channels)
      .Node("n", kind, channels, std::move(params))
      .Output("out", channels)
      .Chain({"in", "n", "out"})
      .Build();
}

TEST(Gain, AccuracyWithinHundredthDb) {
  for (double db : {-60.0, -20.0, -6.0, -0.5, 0.0, 3.0, 12.0, 24.0}) {
    Rig rig;
    rig.Apply(OneNode("gain", {{"gain_db", db}}));
    const Signal x = Sine(997.0, 0.05, 48000);
    const auto y = rig.Run({x}, x.size());
    const double measured = ToDb(Rms(y[0], 4800) / Rms(x, 4800));
    EXPECT_NEAR(measured, db, 0.01) << "gain_db " << db;
  }
}

TEST(Gain, MuteSilencesAndUnmuteRestores) {
  Rig rig;
  rig.Apply(OneNode("gain", {{"gain_db", -6.0}, {"mute", true}}));
  const Signal x = Sine(440.0, 0.5, 9600);
  EXPECT_EQ(Peak(rig.Run({x}, x.size())[0]), 0.0);
  ASSERT_TRUE(rig.engine().SetParameter("n", "mute", false).ok());
  const auto y = rig.Run({x}, x.size());
  EXPECT_NEAR(ToDb(Rms(y[0], 4800) / Rms(x, 4800)), -6.0, 0.01);
}

TEST(Gain, ChangesAreSmoothedNotStepped) {
  Rig rig;
  rig.Apply(OneNode("gain", {{"gain_db", 0.0}}));
  const Signal dc(48000, 0.5f);
  rig.Run({dc}, 4800);
  ASSERT_TRUE(rig.engine().SetParameter("n", "gain_db", -40.0).ok());
  const auto y = rig.Run({dc}, 4800);
  // A step would drop by ~0.495 in one sample; the glide moves gently.
  EXPECT_LT(MaxJump(y[0]), 0.01);
  EXPECT_NEAR(y[0].back(), 0.5 * std::pow(10.0, -40.0 / 20.0), 1e-6);
}

TEST(Delay, SampleExactAcrossPeriods) {
  for (double ms : {0.0, 1.0, 10.0, 20.8333333}) {
    Rig rig(kRate, 64);
    rig.Apply(OneNode("delay", {{"delay_ms", ms}, {"max_delay_ms", 50.0}}));
    Signal x(8000, 0.0f);
    x[100] = 1.0f;
    const auto y = rig.Run({x}, x.size());
    const auto expect = static_cast<size_t>(std::lround(ms * kRate / 1000.0));
    for (size_t n = 0; n < y[0].size(); ++n) {
      ASSERT_EQ(y[0][n], n == 100 + expect ? 1.0f : 0.0f) << "delay_ms " << ms << " frame " << n;
    }
    EXPECT_EQ(rig.engine().OutputLatencyFrames("out"), expect);
  }
}

TEST(Delay, ChangeCrossfadesWithoutClick) {
  Rig rig(kRate, 64);
  rig.Apply(OneNode("delay", {{"delay_ms", 1.0}, {"max_delay_ms", 100.0}}));
  const Signal x = Sine(200.0, 0.5, 48000);
  rig.Run({x}, 4800);
  ASSERT_TRUE(rig.engine().SetParameter("n", "delay_ms", 7.3).ok());
  const Signal x2(x.begin() + 4800, x.end());
  const auto y = rig.Run({x2}, x2.size());
  const double natural = 2.0 * std::numbers::pi * 200.0 / kRate * 0.5;  // max slope per sample
  EXPECT_LT(MaxJump(y[0]), 3.0 * natural);
}

// The cookbook magnitude, evaluated independently of the engine's design code.
double CookbookMagnitudeDb(const std::string& type, double f0, double q, double gain_db, double f) {
  const double w0 = 2 * std::numbers::pi * f0 / kRate;
  const double c = std::cos(w0), s = std::sin(w0), alpha = s / (2 * q);
  const double a = std::pow(10.0, gain_db / 40.0), sa = 2 * std::sqrt(a) * alpha;
  double b[3], d[3];
  if (type == "lowpass") {
    b[0] = (1 - c) / 2, b[1] = 1 - c, b[2] = (1 - c) / 2, d[0] = 1 + alpha, d[1] = -2 * c,
    d[2] = 1 - alpha;
  } else if (type == "highpass") {
    b[0] = (1 + c) / 2, b[1] = -(1 + c), b[2] = (1 + c) / 2, d[0] = 1 + alpha, d[1] = -2 * c,
    d[2] = 1 - alpha;
  } else if (type == "bandpass") {
    b[0] = alpha, b[1] = 0, b[2] = -alpha, d[0] = 1 + alpha, d[1] = -2 * c, d[2] = 1 - alpha;
  } else if (type == "notch") {
    b[0] = 1, b[1] = -2 * c, b[2] = 1, d[0] = 1 + alpha, d[1] = -2 * c, d[2] = 1 - alpha;
  } else if (type == "peaking") {
    b[0] = 1 + alpha * a, b[1] = -2 * c, b[2] = 1 - alpha * a, d[0] = 1 + alpha / a, d[1] = -2 * c,
    d[2] = 1 - alpha / a;
  } else if (type == "lowshelf") {
    b[0] = a * ((a + 1) - (a - 1) * c + sa), b[1] = 2 * a * ((a - 1) - (a + 1) * c),
    b[2] = a * ((a + 1) - (a - 1) * c - sa), d[0] = (a + 1) + (a - 1) * c + sa,
    d[1] = -2 * ((a - 1) + (a + 1) * c), d[2] = (a + 1) + (a - 1) * c - sa;
  } else if (type == "highshelf") {
    b[0] = a * ((a + 1) + (a - 1) * c + sa), b[1] = -2 * a * ((a - 1) + (a + 1) * c),
    b[2] = a * ((a + 1) + (a - 1) * c - sa), d[0] = (a + 1) - (a - 1) * c + sa,
    d[1] = 2 * ((a - 1) - (a + 1) * c), d[2] = (a + 1) - (a - 1) * c - sa;
  } else {  // allpass
    b[0] = 1 - alpha, b[1] = -2 * c, b[2] = 1 + alpha, d[0] = 1 + alpha, d[1] = -2 * c,
    d[2] = 1 - alpha;
  }
  const std::complex<double> z = std::polar(1.0, -2 * std::numbers::pi * f / kRate);
  const auto h = (b[0] + b[1] * z + b[2] * z * z) / (d[0] + d[1] * z + d[2] * z * z);
  return 20 * std::log10(std::abs(h));
}

struct BiquadCase {
  std::string type;
  double freq_hz, q, gain_db;
};

class BiquadResponse : public ::testing::TestWithParam<BiquadCase> {};

TEST_P(BiquadResponse, MagnitudeMatchesCookbookWithinTenthDb) {
  const BiquadCase& c = GetParam();
  for (double f : {100.0, 500.0, 1000.0, 2000.0, 5000.0, 12000.0}) {
    Rig rig(kRate, 128);
    rig.Apply(OneNode(
        "biquad", {{"type", c.type}, {"freq_hz", c.freq_hz}, {"q", c.q}, {"gain_db", c.gain_db}}));
    const double expect_db = CookbookMagnitudeDb(c.type, c.freq_hz, c.q, c.gain_db, f);
    if (expect_db < -50.0) continue;  // deep in a notch: float noise floor dominates
    // A whole number of cycles after the transient has died away.
    const size_t frames = 48000;
    const Signal x = Sine(f, 0.25, frames);
    const auto y = rig.Run({x}, frames);
    const size_t from = 24000;
    const double measured = ToDb(Rms(y[0], from) / Rms(x, from));
    EXPECT_NEAR(measured, expect_db, 0.1) << c.type << " at " << f << " Hz";
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, BiquadResponse,
                         ::testing::Values(BiquadCase{"lowpass", 1000, 0.7071, 0},
                                           BiquadCase{"highpass", 1000, 0.7071, 0},
                                           BiquadCase{"bandpass", 1000, 2.0, 0},
                                           BiquadCase{"notch", 1000, 4.0, 0},
                                           BiquadCase{"peaking", 1000, 1.0, 6.0},
                                           BiquadCase{"lowshelf", 500, 0.7071, -9.0},
                                           BiquadCase{"highshelf", 4000, 0.7071, 6.0},
                                           BiquadCase{"allpass", 1000, 0.7071, 0}),
                         [](const auto& tp) { return tp.param.type; });

TEST(Biquad, DesignMatchesIndependentFormula) {
  // The second-order types (the first-order ones: crossover_test.cc).
  for (int t = 0; t <= static_cast<int>(rt::BiquadType::kAllpass); ++t) {
    static const char* names[] = {"lowpass", "highpass", "bandpass",  "notch",
                                  "peaking", "lowshelf", "highshelf", "allpass"};
    rt::BiquadParams p{static_cast<rt::BiquadType>(t), 2500.0, 1.3, -4.0};
    const auto c = rt::DesignBiquad(p, kRate);
    for (double f : {50.0, 800.0, 2500.0, 9000.0, 20000.0}) {
      const double expect = CookbookMagnitudeDb(names[t], 2500.0, 1.3, -4.0, f);
      if (expect < -200.0) {  // the notch's zero: both are "minus infinity"
        EXPECT_LT(rt::BiquadMagnitudeDb(c, f, kRate), -200.0);
        continue;
      }
      EXPECT_NEAR(rt::BiquadMagnitudeDb(c, f, kRate),
                  CookbookMagnitudeDb(names[t], 2500.0, 1.3, -4.0, f), 1e-6)
          << names[t] << " " << f;
    }
  }
}

TEST(Meter, PeakAndRmsOfKnownSignals) {
  Rig rig;
  rig.Apply(GraphBuilder()
                .Input("in", 2)
                .Node("m", "meter", 2, {{"window_ms", 100.0}})
                .Output("out", 2)
                .Chain({"in", "m", "out"})
                .Build());
  // Channel 0: 1 kHz sine at 0.8 (100 ms holds exactly 100 cycles); channel 1: a square of 0.3.
  const Signal sine = Sine(1000.0, 0.8, 14400);
  Signal square(14400);
  for (size_t n = 0; n < square.size(); ++n) square[n] = (n / 24) % 2 ? 0.3f : -0.3f;
  const auto y = rig.Run({sine, square}, 14400);
  EXPECT_EQ(Peak(y[0]), Peak(sine)) << "meter must pass audio through unchanged";
  auto r = rig.engine().ReadMeter("m");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_NEAR((*r)[0].peak, 0.8, 1e-3);
  EXPECT_NEAR((*r)[0].rms, 0.8 / std::sqrt(2.0), 1e-4);
  EXPECT_NEAR((*r)[1].peak, 0.3, 1e-6);
  EXPECT_NEAR((*r)[1].rms, 0.3, 1e-6);
  EXPECT_FALSE(rig.engine().ReadMeter("nope").ok());
}

TEST(Tone, FrequencyAndLevel) {
  for (auto [freq, level_db] :
       {std::pair{1000.0, -6.0}, std::pair{440.0, -20.0}, std::pair{5123.0, 0.0}}) {
    Rig rig;
    rig.Apply(GraphBuilder()
                  .Node("t", "tone", 1, {{"freq_hz", freq}, {"level_db", level_db}})
                  .Output("out", 1)
                  .Route("t", "out")
                  .Build());
    const auto y = rig.Run({}, 48000);
    // Count positive-going zero crossings over one second.
    int crossings = 0;
    for (size_t n = 1; n < y[0].size(); ++n) crossings += (y[0][n - 1] < 0.0f && y[0][n] >= 0.0f);
    EXPECT_NEAR(crossings, freq, 1.0) << freq;
    EXPECT_NEAR(ToDb(Peak(y[0])), level_db, 0.01) << freq;
    EXPECT_NEAR(ToDb(Rms(y[0]) * std::sqrt(2.0)), level_db, 0.01) << freq;
  }
}

TEST(Mixer, SumsInputsWithPerInputGain) {
  Rig rig;
  rig.Apply(
      GraphBuilder()
          .Input("a")
          .Input("b")
          .Node("mix", "mixer", 1, {{"inputs", 2.0}, {"gains_db", std::vector<double>{0.0, -6.0}}})
          .Output("out")
          .Route("a", "mix.in1")
          .Route("b", "mix.in2")
          .Route("mix", "out")
          .Build());
  const Signal a(4800, 0.25f), b(4800, 0.5f);
  const auto y = rig.Run({a, b}, 4800);
  EXPECT_NEAR(y[0].back(), 0.25 + 0.5 * std::pow(10.0, -6.0 / 20.0), 1e-6);
  ASSERT_TRUE(rig.engine().SetParameter("mix", "gains_db", std::vector<double>{-120.0, 0.0}).ok());
  const auto z = rig.Run({a, b}, 4800);
  EXPECT_NEAR(z[0].back(), 0.5, 1e-6);
}

TEST(FanIn, RoutesIntoOnePortAreSummed) {
  Rig rig;
  rig.Apply(GraphBuilder()
                .Input("a")
                .Input("b")
                .Node("g", "gain", 1)
                .Output("out")
                .Route("a", "g")
                .Route("b", "g")
                .Route("g", "out")
                .Route("a", "out")
                .Build());
  const auto y = rig.Run({Signal(64, 0.1f), Signal(64, 0.2f)}, 64);
  EXPECT_NEAR(y[0][10], 0.4, 1e-6);  // (a + b) + a
}

}  // namespace
}  // namespace aers::test

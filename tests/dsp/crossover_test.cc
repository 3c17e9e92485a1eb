// The crossover kind and the first-order biquad types against analytic
// responses: each band's magnitude against the Butterworth / Linkwitz-Riley
// formula (in the bilinear transform's warped frequency), the bands' sum
// against flat, measured on impulse responses the engine produced.
#include "dsp/crossover.h"

#include <complex>
#include <numbers>

#include "common/process_alloc.h"
#include "common/rig.h"
#include "gmock/gmock.h"
#include "model/validate.h"
#include "rt/biquad.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;
// Every band's impulse response has decayed by then: the slowest section
// (Q 2.56 at 80 Hz) has a time constant of Q / (pi f) = 10 ms.
constexpr size_t kFrames = 16384;

// DFT of h at f (Hz); the phasor is renormalised every 1024 steps.
std::complex<double> Response(const Signal& h, double f) {
  std::complex<double> sum = 0.0;
  const double w = -2.0 * std::numbers::pi * f / kRate;
  const std::complex<double> step = std::polar(1.0, w);
  std::complex<double> z = 1.0;
  for (size_t n = 0; n < h.size(); ++n) {
    if (n % 1024 == 0) z = std::polar(1.0, w * static_cast<double>(n));
    sum += static_cast<double>(h[n]) * z;
    z *= step;
  }
  return sum;
}

// Omega of the digital filter designed at fc by the prewarped bilinear
// transform: tan(pi f / fs) / tan(pi fc / fs).
double Warped(double f, double fc) {
  return std::tan(std::numbers::pi * f / kRate) / std::tan(std::numbers::pi * fc / kRate);
}

// |H|^2 of the lowpass (or highpass) of one crossover at fc.
double PowerGain(const std::string& alignment, int order, bool highpass, double f, double fc) {
  const double w = Warped(f, fc);
  if (alignment == "linkwitz_riley") {
    const double m2 = std::pow(w, order);  // w^(2M), M = order / 2
    const double lp = 1.0 / (1.0 + m2);
    return highpass ? (m2 * lp) * (m2 * lp) : lp * lp;
  }
  const double n2 = std::pow(w, 2 * order);
  return highpass ? n2 / (1.0 + n2) : 1.0 / (1.0 + n2);
}

struct Split {
  std::vector<Signal> bands;  // impulse response of each band
};

// Impulse responses of every band; with `channels` > 1 the impulse is on
// every channel and bands[b * channels + ch] is band b, channel ch (the
// fused kernel runs channels in pairs: each one must come out the same).
Split Impulse(const std::string& alignment, int order, const std::vector<double>& freqs,
              uint32_t period = 256, int channels = 1) {
  Rig rig(kRate, period);
  GraphBuilder g;
  g.Input("in", channels)
      .Node("x", "crossover", channels,
            {{"freqs_hz", freqs}, {"alignment", alignment}, {"order", static_cast<double>(order)}});
  g.Route("in", "x");
  for (size_t b = 1; b <= freqs.size() + 1; ++b) {
    const std::string out = "b" + std::to_string(b);
    g.Output(out, channels).Route("x.band" + std::to_string(b), out);
  }
  rig.Apply(g.Build());
  Signal x(kFrames, 0.0f);
  x[0] = 1.0f;
  return {rig.Run(std::vector<Signal>(static_cast<size_t>(channels), x), kFrames)};
}

// Runs 200 ms of a 700 Hz sine through the rig's graph (node 0 a
// crossover), moves its crossover to 2 kHz, and returns the rest of the
// sine (800 ms) for the caller to run through the glide.
Signal MoveToTwoKilohertz(Rig& rig) {
  const Signal x = Sine(700.0, 0.5, 48000);
  rig.Run({x}, 9600);
  auto spec = rig.engine().spec();
  spec.nodes[0].params["freqs_hz"] = std::vector<double>{2000.0};
  rig.Apply(spec);
  return Signal(x.begin() + 9600, x.end());
}

struct Case {
  std::string alignment;
  int order;
};

class CrossoverResponse : public ::testing::TestWithParam<Case> {};

TEST_P(CrossoverResponse, EachBandMatchesTheAnalyticMagnitudeWithinTenthDb) {
  const Case& c = GetParam();
  for (const std::vector<double>& freqs :
       {std::vector<double>{1000.0}, std::vector<double>{120.0, 2500.0},
        std::vector<double>{80.0, 500.0, 3000.0, 12000.0}}) {
    const Split s = Impulse(c.alignment, c.order, freqs);
    ASSERT_EQ(s.bands.size(), freqs.size() + 1);
    for (size_t b = 0; b < s.bands.size(); ++b) {
      for (double f : {40.0, 100.0, 300.0, 1000.0, 2500.0, 6000.0, 15000.0}) {
        // band b = HP(f_0 .. f_b-1) LP(f_b); the all-passes have |H| = 1
        double power = 1.0;
        for (size_t j = 0; j < b; ++j) power *= PowerGain(c.alignment, c.order, true, f, freqs[j]);
        if (b < freqs.size()) power *= PowerGain(c.alignment, c.order, false, f, freqs[b]);
        const double expect_db = 10.0 * std::log10(power);
        if (expect_db < -70.0) continue;  // float noise floor
        const double measured_db = 20.0 * std::log10(std::abs(Response(s.bands[b], f)));
        EXPECT_NEAR(measured_db, expect_db, 0.1)
            << c.alignment << " order " << c.order << ", " << freqs.size() << " crossovers, band "
            << b + 1 << " at " << f << " Hz";
      }
    }
  }
}

TEST_P(CrossoverResponse, BandsSumFlatExactlyWhereTheAlignmentDoes) {
  const Case& c = GetParam();
  // LR sums to an all-pass; so does odd-order Butterworth. Even-order
  // Butterworth does not (order 2: a null at the crossover), as documented.
  const bool flat = c.alignment == "linkwitz_riley" || c.order % 2 == 1;
  for (const std::vector<double>& freqs :
       {std::vector<double>{1000.0}, std::vector<double>{120.0, 2500.0},
        std::vector<double>{80.0, 500.0, 3000.0, 12000.0}}) {
    const Split s = Impulse(c.alignment, c.order, freqs, 64);
    double worst = 0.0;
    for (int i = 0; i <= 40; ++i) {
      const double f = 20.0 * std::pow(1000.0, i / 40.0);  // 20 Hz .. 20 kHz
      std::complex<double> sum = 0.0;
      for (const auto& band : s.bands) sum += Response(band, f);
      worst = std::max(worst, std::fabs(20.0 * std::log10(std::abs(sum))));
    }
    if (flat) {
      EXPECT_LT(worst, 0.01) << c.alignment << " order " << c.order << ", " << freqs.size()
                             << " crossovers: the bands' sum deviates " << worst << " dB";
    } else {
      EXPECT_GT(worst, 1.0) << "even-order Butterworth summed flat: the test cannot tell";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Alignments, CrossoverResponse,
    ::testing::Values(Case{"linkwitz_riley", 2}, Case{"linkwitz_riley", 4},
                      Case{"linkwitz_riley", 8}, Case{"butterworth", 1}, Case{"butterworth", 2},
                      Case{"butterworth", 3}, Case{"butterworth", 4}, Case{"butterworth", 5},
                      Case{"butterworth", 6}, Case{"butterworth", 7}, Case{"butterworth", 8}),
    [](const auto& tp) { return tp.param.alignment + std::to_string(tp.param.order); });

TEST(Crossover, EightCrossoversOnSeveralChannelsSumFlat) {
  // The longest cascades (the top band: 8 x 4 sections, rt::kMaxCascade)
  // through the two-channel kernel and the single-channel one.
  const std::vector<double> freqs = {40, 100, 250, 600, 1500, 3500, 8000, 16000};
  for (int channels : {2, 3}) {
    for (const auto& [alignment, order] :
         std::vector<std::pair<std::string, int>>{{"linkwitz_riley", 8}, {"butterworth", 7}}) {
      const Split s = Impulse(alignment, order, freqs, 128, channels);
      ASSERT_EQ(s.bands.size(), 9u * static_cast<size_t>(channels));
      for (int ch = 0; ch < channels; ++ch) {
        double worst = 0.0;
        for (int i = 0; i <= 40; ++i) {
          const double f = 20.0 * std::pow(1000.0, i / 40.0);
          std::complex<double> sum = 0.0;
          for (size_t b = 0; b < 9; ++b) {
            sum +=
                Response(s.bands[b * static_cast<size_t>(channels) + static_cast<size_t>(ch)], f);
          }
          worst = std::max(worst, std::fabs(20.0 * std::log10(std::abs(sum))));
        }
        EXPECT_LT(worst, 0.01) << alignment << order << ", " << channels << " channels, channel "
                               << ch;
      }
    }
  }
}

TEST(Crossover, AGlidingCrossoverKeepsTheSumFlat) {
  // The sections of the moved crossover glide together, so the bands' sum
  // stays close to an all-pass during the glide (measured on a 700 Hz sine:
  // its level through the sum stays that of the input). (That a change
  // arriving in the middle of a period reaches every band in the same
  // period is by construction: Process() hands the new frequency to all
  // sections before any band runs.)
  Rig rig(kRate, 256);
  GraphBuilder g;
  g.Input("in", 1)
      .Node("x", "crossover", 1, {{"freqs_hz", std::vector<double>{1000.0}}, {"order", 8.0}})
      .Node("sum", "mixer", 1, {{"inputs", 2.0}})
      .Output("out", 1)
      .Route("in", "x")
      .Route("x.band1", "sum.in1")
      .Route("x.band2", "sum.in2")
      .Route("sum", "out");
  rig.Apply(g.Build());
  const Signal x2 = MoveToTwoKilohertz(rig);
  const auto y = rig.Run({x2}, x2.size());
  // RMS over each 10 ms window (7 cycles) during the glide and after it.
  // Time-varying coefficients leave a small transient (0.15 dB in the first
  // window, an octave in 20 ms); sections out of step would be off by
  // several dB at order 8.
  for (size_t w = 0; w + 480 <= y[0].size(); w += 480) {
    EXPECT_NEAR(ToDb(Rms(y[0], w, w + 480) / Rms(x2, w, w + 480)), 0.0, w < 4800 ? 0.3 : 0.01)
        << "at " << w;
  }
}

TEST(Crossover, FrequenciesAreBoundedByTheSampleRate) {
  auto kinds = dsp::MakeBuiltinRegistry();
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Node("x", "crossover", 1, {{"freqs_hz", std::vector<double>{2000.0, 22000.0}}})
                  .Output("out", 1)
                  .Route("in", "x")
                  .Route("x.band1", "out")
                  .Build();
  model::ValidationContext at44;
  at44.sample_rate_hz = 44100.0;
  std::vector<std::string> out;
  for (const auto& i : model::ValidateGraph(spec, *kinds, at44)) {
    out.push_back(i.path + ": " + i.message);
  }
  EXPECT_THAT(out, ::testing::ElementsAre(::testing::HasSubstr(
                       "nodes[0].params.freqs_hz[1]: freqs_hz[1] = 22000 Hz is out of range; "
                       "allowed 0.882 to 21609 Hz")));
  model::ValidationContext at96;
  at96.sample_rate_hz = 96000.0;
  EXPECT_TRUE(model::ValidateGraph(spec, *kinds, at96).empty());
}

TEST(Crossover, LinkwitzRileyIsMinusSixDbAtTheCrossoverButterworthMinusThree) {
  for (const auto& [alignment, expect_db] : std::vector<std::pair<std::string, double>>{
           {"linkwitz_riley", -6.0206}, {"butterworth", -3.0103}}) {
    const Split s = Impulse(alignment, 4, {1000.0});
    EXPECT_NEAR(20.0 * std::log10(std::abs(Response(s.bands[0], 1000.0))), expect_db, 0.01);
    EXPECT_NEAR(20.0 * std::log10(std::abs(Response(s.bands[1], 1000.0))), expect_db, 0.01);
  }
}

TEST(Crossover, ButterworthQsAreTheTextbookValues) {
  // Order 4: 0.5412, 1.3066; order 8: 0.5098, 0.6013, 0.9000, 2.5629
  // (tables in any filter handbook, e.g. Zverev, Handbook of Filter Synthesis).
  const auto q4 = dsp::ButterworthQs(4);
  ASSERT_EQ(q4.size(), 2u);
  EXPECT_NEAR(q4[0], 0.54120, 1e-5);
  EXPECT_NEAR(q4[1], 1.30656, 1e-5);
  const auto q8 = dsp::ButterworthQs(8);
  ASSERT_EQ(q8.size(), 4u);
  EXPECT_NEAR(q8[0], 0.50980, 1e-5);
  EXPECT_NEAR(q8[1], 0.60134, 1e-5);
  EXPECT_NEAR(q8[2], 0.89998, 1e-5);
  EXPECT_NEAR(q8[3], 2.56292, 1e-5);
  EXPECT_EQ(dsp::ButterworthQs(1).size(), 0u);
  ASSERT_EQ(dsp::ButterworthQs(3).size(), 1u);
  EXPECT_NEAR(dsp::ButterworthQs(3)[0], 1.0, 1e-12);
  const auto q5 = dsp::ButterworthQs(5);  // 0.6180, 1.6180 (the golden ratio)
  ASSERT_EQ(q5.size(), 2u);
  EXPECT_NEAR(q5[0], (std::sqrt(5.0) - 1.0) / 2.0, 1e-12);
  EXPECT_NEAR(q5[1], (std::sqrt(5.0) + 1.0) / 2.0, 1e-12);
  EXPECT_NEAR(dsp::ButterworthQs(2)[0], std::sqrt(0.5), 1e-12);
}

TEST(Crossover, FrequencyChangeGlidesWithoutAClick) {
  Rig rig(kRate, 64);
  GraphBuilder g;
  g.Input("in", 1)
      .Node("x", "crossover", 1, {{"freqs_hz", std::vector<double>{500.0}}})
      .Output("lo", 1)
      .Output("hi", 1)
      .Route("in", "x")
      .Route("x.band1", "lo")
      .Route("x.band2", "hi");
  rig.Apply(g.Build());
  const Signal x2 = MoveToTwoKilohertz(rig);
  const auto y = rig.Run({x2}, x2.size());
  // The sine's own largest step is 2 pi f / fs * A; a click would be far above.
  const double natural = 2.0 * std::numbers::pi * 700.0 / kRate * 0.5;
  EXPECT_LT(MaxJump(y[0]), 1.5 * natural);
  EXPECT_LT(MaxJump(y[1]), 1.5 * natural);
  // Settled: 700 Hz is now well below the 2 kHz crossover (LR4: band1 ~ 0 dB).
  EXPECT_NEAR(ToDb(Rms(y[0], 28800) / Rms(x2, 28800)),
              10.0 * std::log10(PowerGain("linkwitz_riley", 4, false, 700.0, 2000.0)), 0.1);
}

TEST(Crossover, ProcessDoesNotAllocateEvenWhileGliding) {
  EXPECT_EQ(AllocationsWhileProcessing(
                "crossover", 2,
                {{"freqs_hz", std::vector<double>{100.0, 1000.0, 8000.0}}, {"order", 8.0}},
                [](rt::Processor& p) { p.SetParam(0, 1, 1500.0); }),  // a glide in progress
            0u);
}

TEST(Crossover, BadSpecsAreRefusedNamingTheField) {
  auto kinds = dsp::MakeBuiltinRegistry();
  auto check = [&](std::map<std::string, model::ParamValue> params) {
    auto spec = GraphBuilder()
                    .Input("in", 1)
                    .Node("x", "crossover", 1, std::move(params))
                    .Output("out", 1)
                    .Route("in", "x")
                    .Route("x.band1", "out")
                    .Build();
    std::vector<std::string> out;
    for (const auto& i : model::ValidateGraph(spec, *kinds))
      out.push_back(i.path + ": " + i.message);
    return out;
  };
  using ::testing::ElementsAre;
  using ::testing::HasSubstr;
  EXPECT_THAT(check({{"freqs_hz", std::vector<double>{2000.0, 500.0}}}),
              ElementsAre(HasSubstr("nodes[0].params.freqs_hz[1]: 500 Hz is not above")));
  EXPECT_THAT(check({{"freqs_hz", std::vector<double>{}}}),
              ElementsAre(HasSubstr("nodes[0].params.freqs_hz: is empty")));
  EXPECT_THAT(check({{"freqs_hz", std::vector<double>(9, 1000.0)}}),
              ::testing::Contains(HasSubstr("has 9 frequencies; at most 8")));
  EXPECT_THAT(check({{"order", 3.0}}),
              ElementsAre(HasSubstr("nodes[0].params.order: is 3; a Linkwitz-Riley crossover")));
  EXPECT_THAT(check({{"alignment", std::string("butterworth")}, {"order", 3.0}}),
              ::testing::IsEmpty());
  EXPECT_THAT(check({{"alignment", std::string("bessel")}}),
              ElementsAre(HasSubstr("nodes[0].params.alignment")));
}

// --- first-order biquad types ----------------------------------------------

TEST(BiquadFirstOrder, MagnitudeAndPhaseMatchTheBilinearTransform) {
  const double fc = 1000.0;
  for (double f : {50.0, 300.0, 1000.0, 4000.0, 15000.0}) {
    const double w2 = Warped(f, fc) * Warped(f, fc);
    const auto lp = rt::DesignBiquad({rt::BiquadType::kLowpass1, fc, 0.7071, 0.0}, kRate);
    const auto hp = rt::DesignBiquad({rt::BiquadType::kHighpass1, fc, 0.7071, 0.0}, kRate);
    const auto ap = rt::DesignBiquad({rt::BiquadType::kAllpass1, fc, 0.7071, 0.0}, kRate);
    EXPECT_NEAR(rt::BiquadMagnitudeDb(lp, f, kRate), -10.0 * std::log10(1.0 + w2), 1e-9) << f;
    EXPECT_NEAR(rt::BiquadMagnitudeDb(hp, f, kRate), 10.0 * std::log10(w2 / (1.0 + w2)), 1e-9) << f;
    EXPECT_NEAR(rt::BiquadMagnitudeDb(ap, f, kRate), 0.0, 1e-9) << f;
    EXPECT_EQ(lp.b2, 0.0);
    EXPECT_EQ(lp.a2, 0.0);
  }
  // The all-pass: 0 at DC, -90 degrees at fc, -180 toward Nyquist.
  const auto ap = rt::DesignBiquad({rt::BiquadType::kAllpass1, fc, 0.7071, 0.0}, kRate);
  const std::complex<double> z = std::polar(1.0, -2.0 * std::numbers::pi * fc / kRate);
  const auto h = (ap.b0 + ap.b1 * z) / (1.0 + ap.a1 * z);
  EXPECT_NEAR(std::arg(h), -std::numbers::pi / 2.0, 1e-9);
  EXPECT_NEAR(ap.b0 + ap.b1, 1.0 + ap.a1, 1e-12);  // H(1) = 1
}

TEST(BiquadFirstOrder, NodeTypesRunThroughTheEngine) {
  for (const std::string type : {"lowpass1", "highpass1"}) {
    Rig rig(kRate, 128);
    rig.Apply(GraphBuilder()
                  .Input("in", 1)
                  .Node("n", "biquad", 1, {{"type", type}, {"freq_hz", 1000.0}})
                  .Output("out", 1)
                  .Chain({"in", "n", "out"})
                  .Build());
    const Signal x = Sine(1000.0, 0.25, 48000);
    const auto y = rig.Run({x}, x.size());
    EXPECT_NEAR(ToDb(Rms(y[0], 24000) / Rms(x, 24000)), -3.0103, 0.05) << type;
  }
}

}  // namespace
}  // namespace aers::test

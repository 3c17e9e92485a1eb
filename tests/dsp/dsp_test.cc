// Built-in node kinds against analytic expectations.
#include <cmath>
#include <complex>
#include <limits>
#include <memory>
#include <numbers>
#include <random>
#include <vector>

#include "common/alloc_counter.h"
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

// --- Cascade kernels (rt::RunCascadeWith) against a plain scalar loop -------

// The reference: what RunCascade promises, written as plainly as possible.
// Glides advance per sub-block of kSubBlock frames exactly as RunCascade
// does; every stage is a double TDF-II recursion on the sections' own
// z1/z2; the output stays double (the kernels round it to float last).
void ReferenceCascade(rt::BiquadSection* const* s, int count, int channels, const float* const* in,
                      std::vector<std::vector<double>>& out, uint32_t frames) {
  bool gliding = false;
  for (int k = 0; k < count; ++k) gliding |= s[k]->Gliding();
  const uint32_t step = gliding ? rt::BiquadSection::kSubBlock : frames;
  for (uint32_t off = 0; off < frames; off += step) {
    const uint32_t n = std::min(step, frames - off);
    if (gliding) {
      for (int k = 0; k < count; ++k) s[k]->Advance(n);
    }
    for (int ch = 0; ch < channels; ++ch) {
      for (uint32_t i = off; i < off + n; ++i) {
        double x = in[ch][i];
        for (int k = 0; k < count; ++k) {
          const rt::BiquadCoeffs& c = s[k]->coeffs();
          const double y = c.b0 * x + s[k]->z1[ch];
          s[k]->z1[ch] = c.b1 * x - c.a1 * y + s[k]->z2[ch];
          s[k]->z2[ch] = c.b2 * x - c.a2 * y;
          x = y;
        }
        out[ch][i] = x;
      }
    }
  }
  for (int k = 0; k < count; ++k) s[k]->ResetNonFiniteState();
}

// Two identical cascades, one for the kernel and one for the reference.
struct CascadePair {
  std::vector<std::unique_ptr<rt::BiquadSection>> owned;
  std::vector<rt::BiquadSection*> kernel, ref;
  std::vector<rt::BiquadParams> params;
  rt::SignalCounters counters;

  CascadePair(int count, int channels, std::mt19937& rng, bool lp_hp_only) {
    std::uniform_real_distribution<double> logf(std::log(20.0), std::log(20000.0));
    std::uniform_real_distribution<double> q(0.3, 4.0);
    std::uniform_real_distribution<double> gain(-12.0, 12.0);
    std::uniform_int_distribution<int> type(0, rt::kBiquadTypeCount - 1);
    for (int k = 0; k < count; ++k) {
      rt::BiquadParams p;
      p.type = lp_hp_only ? (k % 2 ? rt::BiquadType::kLowpass : rt::BiquadType::kHighpass)
                          : static_cast<rt::BiquadType>(type(rng));
      p.freq_hz = std::exp(logf(rng));
      p.q = q(rng);
      p.gain_db = gain(rng);
      params.push_back(p);
      for (auto* v : {&kernel, &ref}) {
        owned.push_back(std::make_unique<rt::BiquadSection>(p, kRate, channels));
        v->push_back(owned.back().get());
      }
      kernel.back()->counters = &counters;
    }
  }
};

// Kernel output (float) against the reference (double): the float must be
// the rounding of a value within 1e-9 (relative above 1) of the reference,
// i.e. within half a float ulp plus 1e-9.
::testing::AssertionResult Close(double ref, float got) {
  const double tol = 1e-9 * std::max(1.0, std::fabs(ref)) +
                     std::fabs(ref) * static_cast<double>(std::numeric_limits<float>::epsilon()) *
                         0.5 * (1 + 1e-6) +
                     static_cast<double>(std::numeric_limits<float>::denorm_min());
  if (std::fabs(static_cast<double>(got) - ref) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", reference " << ref;
}

// Runs `sizes` (one call each) through both cascades and compares every
// output sample and, at the end, every stage's state. `glide_at` >= 0:
// new targets for every section before that call. `in_place`: the kernel
// filters its input buffer. `cached`: the kernel keeps its layout between
// calls in an rt::CascadeCache, as a plan's cascade step and the nodes
// that run their own cascades do; else it derives it on every call.
void CompareCascade(rt::CascadeVariant variant, int count, int channels,
                    const std::vector<uint32_t>& sizes, std::mt19937& rng, bool lp_hp_only = false,
                    int glide_at = -1, bool in_place = false, int nonfinite_at = -1,
                    bool cached = true) {
  CascadePair c(count, channels, rng, lp_hp_only);
  rt::CascadeCache cache;
  std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
  SCOPED_TRACE(::testing::Message()
               << rt::CascadeVariantName(variant) << " stages " << count << " channels " << channels
               << (in_place ? " in place" : "") << (cached ? " cached" : ""));
  for (size_t call = 0; call < sizes.size(); ++call) {
    const uint32_t n = sizes[call];
    if (static_cast<int>(call) == glide_at) {
      std::uniform_real_distribution<double> f(0.5, 2.0);
      for (int k = 0; k < count; ++k) {
        for (auto* s : {c.kernel[k], c.ref[k]}) {
          s->SetFreqHz(c.params[k].freq_hz * (k % 2 ? 2.0 : 0.5));
          s->SetQ(c.params[k].q * 1.5);
          s->SetGainDb(-c.params[k].gain_db);
        }
      }
    }
    std::vector<std::vector<float>> in(channels, std::vector<float>(n));
    for (auto& ch : in) {
      for (auto& x : ch) x = noise(rng);
    }
    const bool bad = static_cast<int>(call) == nonfinite_at;
    if (bad) {
      in[0][n / 2] = std::numeric_limits<float>::quiet_NaN();
      in[channels - 1][n - 1] = std::numeric_limits<float>::infinity();
    }
    std::vector<std::vector<float>> out(channels, std::vector<float>(n, -7.0f));
    std::vector<std::vector<double>> ref(channels, std::vector<double>(n));
    std::vector<const float*> ip(channels);
    std::vector<float*> op(channels);
    for (int ch = 0; ch < channels; ++ch) {
      ip[ch] = in[ch].data();
      op[ch] = in_place ? in[ch].data() : out[ch].data();
    }
    ReferenceCascade(c.ref.data(), count, channels, ip.data(), ref, n);
    {
      AllocScope allocs;
      rt::RunCascadeWith(variant, c.kernel.data(), count, channels, ip.data(), op.data(), n,
                         cached ? &cache : nullptr);
      ASSERT_EQ(allocs.Finish(), 0u) << "the cascade kernel allocated";
    }
    if (bad) continue;  // non-finite output; both reset their state after the call
    for (int ch = 0; ch < channels; ++ch) {
      for (uint32_t i = 0; i < n; ++i) {
        ASSERT_TRUE(Close(ref[ch][i], op[ch][i])) << "call " << call << " ch " << ch << " i " << i;
      }
    }
  }
  for (int k = 0; k < count; ++k) {
    for (int ch = 0; ch < channels; ++ch) {
      const double tol1 = 1e-9 * std::max(1.0, std::fabs(c.ref[k]->z1[ch]));
      const double tol2 = 1e-9 * std::max(1.0, std::fabs(c.ref[k]->z2[ch]));
      ASSERT_NEAR(c.kernel[k]->z1[ch], c.ref[k]->z1[ch], tol1) << "stage " << k << " ch " << ch;
      ASSERT_NEAR(c.kernel[k]->z2[ch], c.ref[k]->z2[ch], tol2) << "stage " << k << " ch " << ch;
    }
  }
  if (nonfinite_at >= 0) {
    EXPECT_GT(c.counters.state_resets.load(), 0u);
  }
}

std::vector<rt::CascadeVariant> Variants() {
  std::vector<rt::CascadeVariant> v;
  for (auto x :
       {rt::CascadeVariant::kPair, rt::CascadeVariant::kAvx2, rt::CascadeVariant::kAvx512}) {
    if (rt::CascadeVariantAvailable(x)) v.push_back(x);
  }
  return v;
}

TEST(Cascade, SelectedVariantIsAvailable) {
  EXPECT_TRUE(rt::CascadeVariantAvailable(rt::SelectedCascadeVariant()));
  EXPECT_TRUE(rt::CascadeVariantAvailable(rt::CascadeVariant::kPair));
  std::string names;
  for (auto v : Variants()) names += std::string(rt::CascadeVariantName(v)) + " ";
  RecordProperty("variants", names);
  std::printf("cascade variants on this CPU: %s(selected: %s)\n", names.c_str(),
              rt::CascadeVariantName(rt::SelectedCascadeVariant()));
}

// The benchmarks' ceiling (rt::WavefrontChainAlone) runs the kernels' own
// recursion, not something the compiler could drop: after T steps it holds
// what eight sections (y = u + s1; s1 = 2u + s2 + y; s2 = u - 0.3y, as the
// kernels compute them with b0 factored out) fed a constant 1e-3 hold, the
// last stage 7 samples behind the first: stage 7's output for sample T - 8
// (channel 1) plus stage 0's s1 after sample T - 1 (channel 0).
TEST(Cascade, ChainAloneRunsTheKernelsRecursion) {
  EXPECT_EQ(rt::WavefrontChainAlone(rt::CascadeVariant::kPair, 100), 0.0);
  for (const uint32_t steps : {8u, 9u, 100u, 1031u}) {
    double s1[8] = {}, s2[8] = {};
    double out7 = 0.0;
    for (uint32_t n = 0; n < steps; ++n) {
      double u = 1e-3;
      for (int k = 0; k < 8; ++k) {
        const double y = u + s1[k];
        s1[k] = 2.0 * u + s2[k] + y;
        s2[k] = u - 0.3 * y;
        u = y;
      }
      if (n == steps - 8) out7 = u;
    }
    const double expected = out7 + s1[0];
    for (auto v : Variants()) {
      if (v == rt::CascadeVariant::kPair) continue;
      const double got = rt::WavefrontChainAlone(v, steps);
      EXPECT_NEAR(got, expected, 1e-9 * std::fabs(expected))
          << rt::CascadeVariantName(v) << ", " << steps << " steps";
    }
  }
}

// Every stage count 1..32, channels 1..8 and 64, one call of each period
// size in turn (state carried across the irregular calls).
TEST(Cascade, EveryShapeMatchesScalarReference) {
  const std::vector<uint32_t> sizes = {1, 2, 3, 31, 64, 128, 1000, 5, 64};
  for (auto variant : Variants()) {
    std::mt19937 rng(7);
    for (int count = 1; count <= rt::kMaxCascade; ++count) {
      for (int channels : {1, 2, 3, 4, 5, 6, 7, 8, 64}) {
        for (bool cached : {true, false}) {
          CompareCascade(variant, count, channels, sizes, rng, /*lp_hp_only=*/count % 3 == 0, -1,
                         false, -1, cached);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Fixed periods, several calls each, for the common shapes (2 channels,
// 2..16 stages), lowpass/highpass chains (b2 == b0) and mixed types.
TEST(Cascade, FixedPeriodsMatchScalarReference) {
  for (auto variant : Variants()) {
    std::mt19937 rng(11);
    for (uint32_t period : {1u, 2u, 3u, 31u, 64u, 128u, 1000u}) {
      const std::vector<uint32_t> sizes(period < 64 ? 40 : 4, period);
      for (int count = 2; count <= 16; ++count) {
        for (bool lp_hp : {true, false}) {
          CompareCascade(variant, count, 2, sizes, rng, lp_hp);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(Cascade, GlidesMatchScalarReference) {
  const std::vector<uint32_t> sizes = {128, 128, 100, 37, 128, 1000, 128, 3, 128, 128};
  for (auto variant : Variants()) {
    std::mt19937 rng(13);
    for (int count : {1, 2, 5, 8, 9, 16, 17, 32}) {
      for (int channels : {1, 2, 3, 8}) {
        CompareCascade(variant, count, channels, sizes, rng, count == 8, /*glide_at=*/1);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(Cascade, InPlaceMatchesScalarReference) {
  const std::vector<uint32_t> sizes = {1, 3, 64, 128, 1000, 31};
  for (auto variant : Variants()) {
    std::mt19937 rng(17);
    for (int count : {1, 2, 4, 7, 8, 12, 16, 20, 32}) {
      for (int channels : {1, 2, 5, 64}) {
        CompareCascade(variant, count, channels, sizes, rng, count == 8, -1, /*in_place=*/true);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// NaN and Inf in the input of one call: the state goes non-finite and is
// reset after that call (counted), and the following calls match the
// reference again (which resets the same way).
TEST(Cascade, NonFiniteInputThenRecovery) {
  const std::vector<uint32_t> sizes = {128, 128, 128, 64, 1000};
  for (auto variant : Variants()) {
    std::mt19937 rng(19);
    for (int count : {2, 8, 16, 32}) {
      for (int channels : {1, 2, 3}) {
        CompareCascade(variant, count, channels, sizes, rng, count == 8, -1, false,
                       /*nonfinite_at=*/1);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// One stereo call of 128 frames of noise through `c`'s kernel cascade (with
// `variant` and `cache`) and its reference; every output sample compared.
void CompareOneStereoCall(CascadePair& c, int count, rt::CascadeVariant variant,
                          rt::CascadeCache* cache, std::mt19937& rng) {
  constexpr uint32_t n = 128;
  std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
  std::vector<std::vector<float>> in(2, std::vector<float>(n)), out = in;
  for (auto& ch : in) {
    for (auto& x : ch) x = noise(rng);
  }
  std::vector<std::vector<double>> ref(2, std::vector<double>(n));
  const float* ip[2] = {in[0].data(), in[1].data()};
  float* op[2] = {out[0].data(), out[1].data()};
  ReferenceCascade(c.ref.data(), count, 2, ip, ref, n);
  rt::RunCascadeWith(variant, c.kernel.data(), count, 2, ip, op, n, cache);
  for (int ch = 0; ch < 2; ++ch) {
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_TRUE(Close(ref[ch][i], op[ch][i]))
          << rt::CascadeVariantName(variant) << " stages " << count << " ch " << ch << " i " << i;
    }
  }
}

// Switching kernels between calls: the state each leaves is the other's,
// and a cache made for one kernel's layout is made again for the other's.
TEST(Cascade, SwitchingVariantsKeepsState) {
  const auto variants = Variants();
  std::mt19937 rng(23);
  for (int count : {3, 8, 16}) {
    CascadePair c(count, 2, rng, count == 8);
    rt::CascadeCache cache;
    for (int call = 0; call < 12; ++call) {
      CompareOneStereoCall(c, count, variants[call % variants.size()], &cache, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// One cache for two cascades of the same length, called in turn: each call
// finds a layout made for other sections and makes its own again.
TEST(Cascade, ACacheMadeForOtherSectionsIsMadeAgain) {
  std::mt19937 rng(29);
  for (auto variant : Variants()) {
    for (int count : {2, 8, 12}) {
      CascadePair a(count, 2, rng, false);
      CascadePair b(count, 2, rng, false);
      rt::CascadeCache cache;
      for (int call = 0; call < 6; ++call) {
        CompareOneStereoCall(call % 2 ? b : a, count, variant, &cache, rng);
        if (HasFatalFailure()) return;
      }
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

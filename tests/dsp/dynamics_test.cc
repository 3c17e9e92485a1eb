// compressor, limiter and gate against their formulas (dsp/dynamics.h):
// static curves on constant input, attack and release as time constants,
// the limiter's ceiling on hostile signals and its latency, the gate's
// thresholds, hysteresis and hold; no allocation while processing.
#include "dsp/dynamics.h"

#include <numbers>
#include <random>

#include "common/process_alloc.h"
#include "common/rig.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;

model::GraphSpec One(const std::string& kind, std::map<std::string, model::ParamValue> params,
                     int channels = 1) {
  return GraphBuilder()
      .Input("in", channels)
      .Node("d", kind, channels, std::move(params))
      .Output("out", channels)
      .Chain({"in", "d", "out"})
      .Build();
}

double Db(double a) {
  return 20.0 * std::log10(a);
}

double F(float v) {
  return static_cast<double>(v);
}

TEST(CompressorCurve, IsTheTutorialsEquation) {
  // T -20, R 4, W 6: below T - 3 unchanged, above T + 3 T + (x - T) / 4,
  // the knee's quadratic in between, continuous at both ends.
  EXPECT_DOUBLE_EQ(dsp::CompressorCurveDb(-30.0, -20.0, 4.0, 6.0), -30.0);
  EXPECT_DOUBLE_EQ(dsp::CompressorCurveDb(-10.0, -20.0, 4.0, 6.0), -17.5);
  EXPECT_NEAR(dsp::CompressorCurveDb(-23.0, -20.0, 4.0, 6.0), -23.0, 1e-12);
  EXPECT_NEAR(dsp::CompressorCurveDb(-17.0, -20.0, 4.0, 6.0), -20.0 + 3.0 / 4.0, 1e-12);
  // At the threshold the knee gives (1/R - 1) (W/2)^2 / (2W) = -0.5625 dB.
  EXPECT_NEAR(dsp::CompressorCurveDb(-20.0, -20.0, 4.0, 6.0), -20.5625, 1e-12);
  EXPECT_DOUBLE_EQ(dsp::CompressorCurveDb(-20.0, -20.0, 4.0, 0.0), -20.0);  // hard knee
}

TEST(Compressor, StaticCurveOnConstantInputWithinHundredthDb) {
  for (double level_db : {-40.0, -23.0, -20.0, -18.0, -10.0, -1.0}) {
    Rig rig(kRate, 256);
    rig.Apply(One("compressor", {{"threshold_db", -20.0},
                                 {"ratio", 4.0},
                                 {"knee_db", 6.0},
                                 {"attack_ms", 1.0},
                                 {"release_ms", 10.0},
                                 {"makeup_db", 2.0}}));
    const auto a = static_cast<float>(std::pow(10.0, level_db / 20.0));
    const Signal dc(24000, a);
    const auto y = rig.Run({dc}, dc.size());
    const double expect = dsp::CompressorCurveDb(level_db, -20.0, 4.0, 6.0) + 2.0;
    EXPECT_NEAR(Db(y[0].back()), expect, 0.01) << level_db << " dB in";
  }
}

TEST(Compressor, AttackAndReleaseAreTimeConstants) {
  // A step from -40 dB (no reduction) to 0 dB (hard knee, ratio 100: the
  // reduction heads for -19.8 dB): after attack_ms it has gone 1 - 1/e of
  // the way; back down to -40 dB it recovers 1 - 1/e after release_ms.
  Rig rig(kRate, 64);
  rig.Apply(One("compressor", {{"threshold_db", -20.0},
                               {"ratio", 100.0},
                               {"knee_db", 0.0},
                               {"attack_ms", 20.0},
                               {"release_ms", 200.0}}));
  rig.Run({Signal(4800, 0.01f)}, 4800);
  const auto up = rig.Run({Signal(48000, 1.0f)}, 48000);
  const double final_reduction = -20.0 + 20.0 / 100.0;
  EXPECT_NEAR(Db(up[0][959]), final_reduction * (1.0 - std::exp(-1.0)), 0.05);  // 20 ms
  EXPECT_NEAR(Db(up[0].back()), final_reduction, 0.01);
  const auto down = rig.Run({Signal(48000, 0.01f)}, 48000);
  // Reduction left after 200 ms: final_reduction / e; after 1 s (5 time
  // constants): final_reduction / e^5.
  EXPECT_NEAR(Db(F(down[0][9599]) / 0.01), final_reduction * std::exp(-1.0), 0.05);
  EXPECT_NEAR(Db(F(down[0].back()) / 0.01), final_reduction * std::exp(-5.0), 0.01);
}

TEST(Compressor, LinkAppliesTheLoudChannelsGainToTheQuietOne) {
  for (bool link : {true, false}) {
    Rig rig(kRate, 256);
    rig.Apply(One("compressor",
                  {{"threshold_db", -20.0}, {"ratio", 4.0}, {"knee_db", 0.0}, {"link", link}}, 2));
    const auto y = rig.Run({Signal(24000, 1.0f), Signal(24000, 0.01f)}, 24000);
    const double quiet_db = Db(F(y[1].back()) / 0.01);
    if (link) {
      EXPECT_NEAR(quiet_db, -15.0, 0.01);  // 0 dB in -> -15 out: -15 dB on both
    } else {
      EXPECT_NEAR(quiet_db, 0.0, 0.01);
    }
    EXPECT_NEAR(Db(y[0].back()), -15.0, 0.01);
  }
}

TEST(Limiter, NothingLeavesAboveTheCeiling) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (double ceiling_db : {-1.0, -6.0, -0.1}) {
    Rig rig(kRate, 128);
    rig.Apply(One("limiter", {{"ceiling_db", ceiling_db}, {"lookahead_ms", 2.0}}, 2));
    const size_t frames = 96000;
    Signal l(frames), r(frames);
    for (size_t n = 0; n < frames; ++n) {
      // loud noise, single-sample spikes to +20 dBFS, a clipped square, silence
      const float burst = (n / 4800) % 3 == 0 ? 4.0f : 0.5f;
      l[n] = noise(rng) * burst;
      r[n] = n % 997 == 0 ? 10.0f : ((n / 100) % 2 ? 3.0f : -3.0f);
      if (n > 80000) l[n] = r[n] = 0.0f;
    }
    const auto y = rig.Run({l, r}, frames);
    const auto ceiling = static_cast<float>(std::pow(10.0, ceiling_db / 20.0));
    float worst = 0.0f;
    for (const auto& ch : y) {
      for (float v : ch) worst = std::max(worst, std::fabs(v));
    }
    EXPECT_LE(worst, ceiling) << ceiling_db;
    // ... and it does limit: the loud parts come out near the ceiling, not far below.
    EXPECT_GT(worst, 0.9f * ceiling);
  }
}

TEST(Limiter, SubBassAndSlowDecaysAreLimitedNotClipped) {
  // A 40 Hz sine at +20 dBFS (its peak falls for 12 ms, longer than the
  // 5 ms lookahead) and a slowly decaying burst: the gain must do the work,
  // the final clamp (there for rounding) must almost never touch a sample.
  // A gain that lets peaks through to the clamp flattens thousands of them.
  for (double release_ms : {10.0, 100.0}) {
    Rig rig(44100.0, 128);
    rig.Apply(One("limiter", {{"ceiling_db", -1.0}, {"release_ms", release_ms}}));
    Signal x = Sine(40.0, 10.0, 44100, 44100.0);
    for (size_t n = 0; n < x.size(); ++n) {
      if (n >= 22050)
        x[n] *= static_cast<float>(std::exp(-static_cast<double>(n - 22050) / 8000.0));
    }
    const auto y = rig.Run({x}, x.size());
    const auto ceiling = static_cast<float>(std::pow(10.0, -1.0 / 20.0));
    size_t at_ceiling = 0;
    float worst = 0.0f;
    for (float v : y[0]) {
      worst = std::max(worst, std::fabs(v));
      if (std::fabs(v) >= ceiling * 0.99999f) ++at_ceiling;
    }
    EXPECT_LE(worst, ceiling);
    EXPECT_LT(at_ceiling, 400u) << "release " << release_ms << " ms: " << at_ceiling
                                << " samples flattened at the ceiling";
  }
}

TEST(Limiter, BelowTheCeilingItIsAnExactDelayOfTheLookahead) {
  Rig rig(kRate, 64);
  rig.Apply(One("limiter", {{"ceiling_db", -1.0}, {"lookahead_ms", 5.0}}));
  const Signal x = Sine(440.0, 0.5, 9600);
  const auto y = rig.Run({x}, x.size());
  const size_t d = 240;  // 5 ms at 48 kHz
  for (size_t n = d; n < x.size(); ++n) ASSERT_EQ(y[0][n], x[n - d]) << n;
  EXPECT_EQ(rig.engine().OutputLatencyFrames("out"), d);
}

TEST(Limiter, ReleasesWithItsTimeConstant) {
  Rig rig(kRate, 64);
  rig.Apply(One("limiter", {{"ceiling_db", -6.0}, {"lookahead_ms", 1.0}, {"release_ms", 100.0}}));
  // A 0 dBFS burst (6 dB of reduction), then -20 dBFS: the gain comes back.
  rig.Run({Signal(4800, 1.0f)}, 4800);
  const auto y = rig.Run({Signal(48000, 0.1f)}, 48000);
  // 100 ms after the burst left the window: 1 - 1/e of the way back (the
  // mean over the 1 ms window lags by half of it).
  const size_t at = 48 + 4800;
  const double gain = static_cast<double>(y[0][at]) / 0.1;
  const double start = std::pow(10.0, -6.0 / 20.0);
  EXPECT_NEAR(gain, 1.0 - (1.0 - start) * std::exp(-1.0), 0.01);
  EXPECT_NEAR(static_cast<double>(y[0].back()) / 0.1, 1.0, 1e-4);
}

TEST(Compressor, ChangingLinkLiveDoesNotJump) {
  // Linked, a loud left channel compresses the quiet right one; unlinking
  // must start the right channel from that state and release from it (no
  // step to its own, uncompressed level).
  Rig rig(kRate, 64);
  rig.Apply(One("compressor",
                {{"threshold_db", -20.0}, {"ratio", 10.0}, {"knee_db", 0.0}, {"release_ms", 200.0}},
                2));
  const Signal loud = Sine(200.0, 1.0, 9600), quiet = Sine(200.0, 0.05, 9600);
  rig.Run({loud, quiet}, 9600);
  ASSERT_TRUE(rig.engine().SetParameter("d", "link", false).ok());
  const auto y = rig.Run({loud, quiet}, 9600);
  // Right channel: starts about 17 dB down and glides up; its largest
  // sample-to-sample change stays that of a sine, not a step of ~0.04.
  const double natural = 2.0 * std::numbers::pi * 200.0 / kRate * 0.05;
  EXPECT_LT(MaxJump(y[1]), 1.5 * natural);
  EXPECT_LT(Rms(y[1], 0, 960), 0.5 * Rms(quiet, 0, 960));  // still compressed at first
}

TEST(Gate, OpensClosesWithHysteresisAndHold) {
  Rig rig(kRate, 64);
  rig.Apply(One("gate", {{"threshold_db", -40.0},
                         {"hysteresis_db", 10.0},
                         {"hold_ms", 20.0},
                         {"attack_ms", 0.1},
                         {"release_ms", 1.0},
                         {"range_db", -60.0}}));
  auto level = [&](float a, size_t frames) {
    const auto y = rig.Run({Signal(frames, a)}, frames);
    return Db(F(y[0].back()) / F(a));
  };
  const auto db = [](double v) { return static_cast<float>(std::pow(10.0, v / 20.0)); };
  EXPECT_NEAR(level(db(-45.0), 4800), -60.0, 0.01);  // below: closed
  EXPECT_NEAR(level(db(-35.0), 4800), 0.0, 0.01);    // above: open
  EXPECT_NEAR(level(db(-45.0), 4800), 0.0, 0.01);    // in the hysteresis band: stays open
  // Below -50 dB: still open during the 20 ms hold, closed after it.
  const auto y = rig.Run({Signal(4800, db(-55.0))}, 4800);
  EXPECT_NEAR(Db(F(y[0][480]) / F(db(-55.0))), 0.0, 0.01);     // 10 ms
  EXPECT_NEAR(Db(F(y[0][4799]) / F(db(-55.0))), -60.0, 0.01);  // 100 ms
  // Closing glided in dB (1 ms), it did not step: the largest sample-to-
  // sample change is the glide's first step, 60 dB * (1 - e^(-1/48)) = 1.2 dB
  // (13 % of the signal), where a step would remove 99.9 % at once.
  double worst = 0.0;
  for (size_t n = 1; n < y[0].size(); ++n) {
    worst = std::max(worst, std::fabs(F(y[0][n]) - F(y[0][n - 1])));
  }
  const double first_step_db = -60.0 * (1.0 - std::exp(-1000.0 / (1.0 * kRate)));
  EXPECT_LT(worst, F(db(-55.0)) * (1.0 - std::pow(10.0, first_step_db / 20.0)) * 1.01);
}

TEST(Dynamics, ProcessDoesNotAllocate) {
  // A sine at +3.5 dBFS: every kind reduces gain; the threshold moves too.
  for (const std::string name : {"compressor", "limiter", "gate"}) {
    EXPECT_EQ(AllocationsWhileProcessing(
                  name, 2, {}, [](rt::Processor& p) { p.SetParam(0, 0, -30.0); }, 1.5f),
              0u)
        << name;
  }
}

}  // namespace
}  // namespace aers::test

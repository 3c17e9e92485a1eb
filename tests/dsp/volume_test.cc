// The volume kind: accuracy, the per-sample glide (no zipper noise at any
// rate of change), mute, loudness compensation against the RBJ shelves it
// is made of, the start-up limit, and no allocation while processing.
#include <numbers>

#include "common/process_alloc.h"
#include "common/rig.h"
#include "gmock/gmock.h"
#include "model/kind.h"
#include "rt/biquad.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;

model::GraphSpec Volume(std::map<std::string, model::ParamValue> params, int channels = 1) {
  return GraphBuilder()
      .Input("in", channels)
      .Node("v", "volume", channels, std::move(params))
      .Output("out", channels)
      .Chain({"in", "v", "out"})
      .Build();
}

TEST(Volume, LevelWithinHundredthDb) {
  for (double db : {-60.0, -25.0, -6.0, 0.0, 6.0, 12.0}) {
    Rig rig;
    rig.Apply(Volume({{"volume_db", db}}));
    const Signal x = Sine(997.0, 0.1, 9600);
    const auto y = rig.Run({x}, x.size());
    EXPECT_NEAR(ToDb(Rms(y[0], 4800) / Rms(x, 4800)), db, 0.01) << db;
  }
}

TEST(Volume, FastMovesGlideWithoutSteps) {
  // A fader moved every period across 60 dB: the gain applied to a DC
  // input never jumps by more than a small fraction of the signal.
  Rig rig(kRate, 64);
  rig.Apply(Volume({{"volume_db", 0.0}, {"ramp_ms", 20.0}}));
  const Signal dc(64, 0.5f);
  double worst = 0.0;
  float last = 0.5f;
  for (int period = 0; period < 400; ++period) {
    const double target = period % 40 < 20 ? -60.0 : 0.0;
    if (period % 20 == 0) {
      ASSERT_TRUE(rig.engine().SetParameter("v", "volume_db", target).ok());
    }
    const auto y = rig.Run({dc}, 64);
    for (float v : y[0]) {
      worst = std::max(worst, static_cast<double>(std::fabs(v - last)));
      last = v;
    }
  }
  // A step from 0 to -60 dB would move by ~0.5 in one sample. The glide's
  // steepest sample is at its start: 60 dB * (1 - exp(-1 / (0.02 s * 48 kHz)))
  // = 0.06 dB, a change of 0.7 % of 0.5: 0.0035.
  EXPECT_LT(worst, 0.01);
  EXPECT_GT(worst, 0.0);
}

TEST(Volume, RampZeroIsAStepAndTheGlideTakesItsTime) {
  // The check above can fail: without a ramp the same move jumps.
  Rig rig(kRate, 64);
  rig.Apply(Volume({{"volume_db", 0.0}, {"ramp_ms", 0.0}}));
  const Signal dc(64, 0.5f);
  rig.Run({dc}, 64);
  ASSERT_TRUE(rig.engine().SetParameter("v", "volume_db", -60.0).ok());
  const auto y = rig.Run({dc}, 64);
  EXPECT_NEAR(y[0][0], 0.5 * std::pow(10.0, -3.0), 1e-6);
  // With 50 ms, after 50 ms the level is 1 - 1/e of the way (in dB).
  Rig slow(kRate, 64);
  slow.Apply(Volume({{"volume_db", 0.0}, {"ramp_ms", 50.0}}));
  slow.Run({dc}, 64);
  ASSERT_TRUE(slow.engine().SetParameter("v", "volume_db", -40.0).ok());
  const Signal dc2(2400, 0.5f);
  const auto z = slow.Run({dc2}, 2400);
  EXPECT_NEAR(ToDb(static_cast<double>(z[0][2399]) / 0.5), -40.0 * (1.0 - std::exp(-1.0)), 0.1);
}

TEST(Volume, MuteGlidesToExactSilenceAndBack) {
  Rig rig(kRate, 64);
  rig.Apply(Volume({{"volume_db", -6.0}}));
  const Signal x = Sine(440.0, 0.5, 48000);
  rig.Run({x}, 4800);
  ASSERT_TRUE(rig.engine().SetParameter("v", "mute", true).ok());
  const auto y = rig.Run({x}, 48000);
  EXPECT_LT(MaxJump(y[0]), 0.1);
  for (size_t n = 38400; n < y[0].size(); ++n) ASSERT_EQ(y[0][n], 0.0f) << n;
  ASSERT_TRUE(rig.engine().SetParameter("v", "mute", false).ok());
  const auto z = rig.Run({x}, 48000);
  EXPECT_NEAR(ToDb(Rms(z[0], 24000) / Rms(x, 24000)), -6.0, 0.01);
}

// |H| in dB of the loudness shelves at `boost` fraction, from the cookbook.
double ShelvesDb(double f, double low_db, double high_db) {
  const auto lo = rt::DesignBiquad({rt::BiquadType::kLowshelf, 70.0, 0.7071, low_db}, kRate);
  const auto hi = rt::DesignBiquad({rt::BiquadType::kHighshelf, 3500.0, 0.7071, high_db}, kRate);
  return rt::BiquadMagnitudeDb(lo, f, kRate) + rt::BiquadMagnitudeDb(hi, f, kRate);
}

TEST(Volume, LoudnessShelvesScaleWithTheDistanceBelowTheReference) {
  // reference -25 dB, boosts 8 / 4 dB: at -25 nothing; at -35 half; at -45
  // and below the full boost.
  for (const auto& [volume_db, fraction] : std::vector<std::pair<double, double>>{
           {-10.0, 0.0}, {-25.0, 0.0}, {-35.0, 0.5}, {-45.0, 1.0}, {-70.0, 1.0}}) {
    for (double f : {40.0, 200.0, 1000.0, 8000.0}) {
      Rig rig(kRate, 128);
      rig.Apply(Volume({{"volume_db", volume_db},
                        {"loudness", true},
                        {"loudness_reference_db", -25.0},
                        {"loudness_low_boost_db", 8.0},
                        {"loudness_high_boost_db", 4.0}}));
      const Signal x = Sine(f, 0.25, 48000);
      const auto y = rig.Run({x}, x.size());
      const double expect = volume_db + ShelvesDb(f, 8.0 * fraction, 4.0 * fraction);
      EXPECT_NEAR(ToDb(Rms(y[0], 24000) / Rms(x, 24000)), expect, 0.05)
          << "volume " << volume_db << " dB at " << f << " Hz";
    }
  }
}

TEST(Volume, LoudnessBoostNeverRunsAheadOfTheVolume) {
  // Turned down slowly with loudness on, the bass must never come out
  // louder than it went in before the move: the boost follows the gliding
  // level, not its target (which would lift 40 Hz by about 2.5 dB here).
  Rig rig(kRate, 256);
  rig.Apply(Volume({{"volume_db", 0.0},
                    {"ramp_ms", 300.0},
                    {"loudness", true},
                    {"loudness_low_boost_db", 7.0}}));
  const Signal x = Sine(40.0, 0.5, 48000 * 4);
  rig.Run({x}, 9600);
  ASSERT_TRUE(rig.engine().SetParameter("v", "volume_db", -45.0).ok());
  const Signal x2(x.begin() + 9600, x.end());
  const auto y = rig.Run({x2}, x2.size());
  double loudest = -200.0;
  for (size_t w = 0; w + 1200 <= y[0].size(); w += 1200) {  // 25 ms: one cycle
    loudest = std::max(loudest, ToDb(Rms(y[0], w, w + 1200) / Rms(x2, w, w + 1200)));
  }
  EXPECT_LT(loudest, 0.1);
  // Settled at -45 dB (20 dB below the reference): the full boost.
  const double settled = ToDb(Rms(y[0], y[0].size() - 4800) / Rms(x2, x2.size() - 4800));
  EXPECT_NEAR(settled, -45.0 + ShelvesDb(40.0, 7.0, 7.0), 0.05);
}

TEST(Volume, LoudnessOffIsFlat) {
  for (double f : {30.0, 1000.0, 15000.0}) {
    Rig rig(kRate, 128);
    rig.Apply(Volume({{"volume_db", -50.0}, {"loudness", false}}));
    const Signal x = Sine(f, 0.25, 48000);
    const auto y = rig.Run({x}, x.size());
    EXPECT_NEAR(ToDb(Rms(y[0], 24000) / Rms(x, 24000)), -50.0, 0.01) << f;
  }
}

TEST(Volume, StartupLimitPullsTheVolumeDownOnlyAtStart) {
  auto kinds = dsp::MakeBuiltinRegistry();
  auto graph = Volume({{"volume_db", 0.0}, {"startup_max_db", -30.0}});
  graph.nodes.push_back(graph.nodes[0]);
  graph.nodes[1].name = "quiet";
  graph.nodes[1].params["volume_db"] = -40.0;
  const auto changes = model::ApplyStartupLimits(graph, *kinds);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_THAT(changes[0], ::testing::HasSubstr("nodes[0] v: volume_db 0 dB is above "
                                               "startup_max_db; starting at -30 dB"));
  EXPECT_EQ(std::get<double>(graph.nodes[0].params.at("volume_db")), -30.0);
  EXPECT_EQ(std::get<double>(graph.nodes[1].params.at("volume_db")), -40.0);
  // Without the parameter nothing changes.
  auto plain = Volume({{"volume_db", 6.0}});
  EXPECT_TRUE(model::ApplyStartupLimits(plain, *kinds).empty());
  // A running node may go above it: the limit is not a range.
  Rig rig;
  rig.Apply(Volume({{"volume_db", -30.0}, {"startup_max_db", -30.0}}));
  EXPECT_TRUE(rig.engine().SetParameter("v", "volume_db", 0.0).ok());
}

TEST(Volume, ProcessDoesNotAllocateWhileGliding) {
  // volume and loudness shelves gliding
  EXPECT_EQ(AllocationsWhileProcessing("volume", 2, {{"loudness", true}},
                                       [](rt::Processor& p) { p.SetParam(0, 0, -50.0); }),
            0u);
}

}  // namespace
}  // namespace aers::test

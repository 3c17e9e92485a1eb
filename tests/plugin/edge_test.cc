// Plugins at the edges (docs/robustness.md): taken at their word about
// ranges that follow the sample rate and about latency, and never trusted
// with the numbers they output.
#include <unistd.h>

#include <cmath>

#include "aers/plugin.h"
#include "gmock/gmock.h"
#include "plugin/plugin_fixture.h"

namespace aers::plugin::test {
namespace {

using aers::test::Sine;
using ::testing::HasSubstr;

constexpr const char* kFilter = "/usr/lib/ladspa/filter.so";  // ladspa-sdk: lpf, hpf
constexpr const char* kLimiter = "/usr/lib/ladspa/fast_lookahead_limiter_1913.so";  // swh

class EdgeTest : public ::testing::Test {
 protected:
  PluginPolicy Policy() {
    auto p = env_.Policy();
    p.allowed_system_dirs = {"/usr/lib/ladspa"};
    return p;
  }
  void AddLadspa(const std::string& name, const char* so, const std::string& label,
                 const std::string& kind, std::vector<std::string> deps = {}) {
    PluginSpec s;
    s.deps = std::move(deps);
    s.name = name;
    s.format = "ladspa";
    s.module = so;
    s.so_path = so;
    s.allowed = {kind};
    s.extra = absl::StrCat("labels:\n  - {label: ", label, ", kind: ", kind, "}\n");
    env_.AddPlugin(s);
  }
  void AddEdgePlugin() {
    PluginSpec s;
    s.name = "edge";
    s.so_path = AERS_TP_EDGE_SO;
    s.allowed = {"pass"};
    env_.AddPlugin(s);
  }
  static model::GraphSpec Lpf(double cutoff_hz) {
    return GraphBuilder()
        .Input("in", 1)
        .Output("out", 1)
        .Node("f", "filt/lpf", 1, {{"cutoff_frequency_hz", cutoff_hz}})
        .Chain({"in", "f", "out"})
        .Build();
  }

  PluginEnv env_;
};

// LADSPA_HINT_SAMPLE_RATE: "0 to 0.5*srate". The range follows the actual
// rate: 12 kHz is refused at 22.05 kHz (it would be above Nyquist), 30 kHz
// is accepted at 96 kHz, and the end point 0.5 * rate itself is accepted.
TEST_F(EdgeTest, LadspaSampleRateRangesFollowTheActualRate) {
  if (::access(kFilter, R_OK) != 0) GTEST_SKIP() << kFilter << " missing (ladspa-sdk)";
  AddLadspa("filt", kFilter, "lpf", "lpf");
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  ASSERT_TRUE(loader.Load("filt", *registry).ok());
  const model::NodeKind* lpf = registry->Find("filt/lpf");
  ASSERT_NE(lpf, nullptr);
  const model::ParamDesc* cutoff = lpf->FindParam("cutoff_frequency_hz");
  ASSERT_NE(cutoff, nullptr);
  EXPECT_TRUE(cutoff->per_sample_rate);
  EXPECT_DOUBLE_EQ(cutoff->At(22050.0).max, 11025.0);
  EXPECT_DOUBLE_EQ(cutoff->At(96000.0).max, 48000.0);
  EXPECT_DOUBLE_EQ(std::get<double>(cutoff->At(96000.0).default_value), 440.0);  // absolute

  Rig low({.rate_hz = 22050.0, .kinds = registry.get()});
  auto refused = low.engine().Apply(Lpf(12000.0));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("nodes[0].params.cutoff_frequency_hz"));
  EXPECT_THAT(refused.status().message(), HasSubstr("11025"));
  EXPECT_TRUE(low.engine().Apply(Lpf(11025.0)).ok());  // the end point is accepted
  auto out = low.Run({Sine(100.0, 0.5, 4410, 22050.0)}, 4410);
  for (float x : out[0]) ASSERT_TRUE(std::isfinite(x));

  Rig high({.rate_hz = 96000.0, .kinds = registry.get()});
  EXPECT_TRUE(high.engine().Apply(Lpf(30000.0)).ok());
  EXPECT_TRUE(high.engine().Apply(Lpf(48000.0)).ok());
  EXPECT_FALSE(high.engine().Apply(Lpf(48000.5)).ok());

  // A rate change re-checks the value: 30 kHz at 44.1 kHz is clamped to
  // 22.05 kHz and the graph says so.
  ASSERT_TRUE(high.engine().Apply(Lpf(30000.0)).ok());
  const uint64_t rev = high.engine().revision();
  ASSERT_TRUE(high.engine().SetFormat({44100.0, 64}).ok());
  const auto spec = high.engine().spec();
  EXPECT_EQ(spec.nodes[0].params.at("cutoff_frequency_hz"), model::ParamValue(22050.0));
  EXPECT_GT(high.engine().revision(), rev);
}

// The LADSPA "latency" output port convention: the limiter's look-ahead is
// read at activation and becomes graph latency, exactly like a delay node.
TEST_F(EdgeTest, LadspaLatencyPortAddsToGraphLatency) {
  if (::access(kLimiter, R_OK) != 0) GTEST_SKIP() << kLimiter << " missing (swh-plugins)";
  AddLadspa("lim", kLimiter, "fastLookaheadLimiter", "limiter", {"librt.so.1"});
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  auto r = loader.Load("lim", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  Rig rig({.kinds = registry.get()});
  auto spec = GraphBuilder()
                  .Input("in", 2)
                  .Output("out", 2)
                  .Node("l", "lim/limiter", 2)
                  .Node("d", "delay", 2, {{"delay_ms", 1.0}})
                  .Chain({"in", "l", "d", "out"})
                  .Build();
  auto applied = rig.engine().Apply(spec);
  ASSERT_TRUE(applied.ok()) << applied.status();
  const auto total = rig.engine().LatencyFrames("in", "out");
  ASSERT_TRUE(total.has_value());
  EXPECT_GT(*total, 48u) << "the limiter's look-ahead is missing from the graph latency";
  spec.nodes.erase(spec.nodes.begin());
  spec.routes = GraphBuilder().Chain({"in", "d", "out"}).Build().routes;
  ASSERT_TRUE(rig.engine().Apply(spec).ok());
  EXPECT_EQ(rig.engine().LatencyFrames("in", "out"), 48u);  // the delay alone
}

// The aers ABI's optional latency_frames, and NaN/Inf from a plugin's
// process(): replaced by 0 and counted on the node; finite audio again in
// the first period after the plugin behaves, through every stateful kind
// downstream.
TEST_F(EdgeTest, AersPluginLatencyAndNonFiniteOutput) {
  AddEdgePlugin();
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  ASSERT_TRUE(loader.Load("edge", *registry).ok());
  Rig rig({.kinds = registry.get()});
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Output("out", 1)
                  .Node("p", "edge/pass", 1)
                  .Node("eq", "biquad", 1, {{"type", std::string("peaking")}, {"gain_db", 6.0}})
                  .Node("d", "delay", 1, {{"delay_ms", 2.0}})
                  .Node("m", "meter", 1, {{"window_ms", 10.0}})
                  .Chain({"in", "p", "eq", "d", "m", "out"})
                  .Build();
  ASSERT_TRUE(rig.engine().Apply(spec).ok());
  EXPECT_EQ(rig.engine().LatencyFrames("in", "out"), 32u + 96u);

  for (double poison : {1.0, 2.0}) {
    ASSERT_TRUE(rig.engine().SetParameter("p", "poison", poison).ok());
    auto bad = rig.Run({Sine(440.0, 0.5, 960)}, 960);
    for (float x : bad[0]) ASSERT_TRUE(std::isfinite(x)) << "poison " << poison;
    ASSERT_TRUE(rig.engine().SetParameter("p", "poison", 0.0).ok());
    // One period for the mailbox to deliver, one for the signal: after that
    // (and the delay line's 2 ms) the output is the clean filtered sine.
    auto good = rig.Run({Sine(440.0, 0.5, 4800)}, 4800);
    EXPECT_GT(aers::test::Rms(good[0], 1200), 0.3) << "audio did not come back, poison " << poison;
    for (float x : good[0]) ASSERT_TRUE(std::isfinite(x));
  }
  uint64_t replaced = 0;
  for (const auto& r : rig.engine().SignalReports()) {
    if (r.name == "p") replaced = r.nonfinite;
  }
  EXPECT_GE(replaced, 2u * 900u);
}

// A plugin built against the first ABI 1 header (no optional members):
// still admitted, its kinds found at its own stride, no latency read.
TEST_F(EdgeTest, PluginFromTheOlderHeaderStillLoads) {
  static_assert(AERS_KIND_DESCRIPTOR_MIN_SIZE < sizeof(aers_kind_descriptor));
  PluginSpec s;
  s.name = "old";
  s.so_path = AERS_TP_OLD_HEADER_SO;
  s.allowed = {"pass", "pass2"};
  env_.AddPlugin(s);
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  auto r = loader.Load("old", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kinds, (std::vector<std::string>{"old/pass", "old/pass2"}));
  Rig rig({.kinds = registry.get()});
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Output("out", 1)
                  .Node("p", "old/pass2", 1, {{"scale", 0.5}})
                  .Chain({"in", "p", "out"})
                  .Build();
  ASSERT_TRUE(rig.engine().Apply(spec).ok());
  EXPECT_EQ(rig.engine().LatencyFrames("in", "out"), 0u);
  const Signal x = Sine(440.0, 0.8, 960);
  auto out = rig.Run({x}, 960);
  for (size_t n = 480; n < 960; ++n) ASSERT_FLOAT_EQ(out[0][n], 0.5f * x[n]) << n;
}

}  // namespace
}  // namespace aers::plugin::test

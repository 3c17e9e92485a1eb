// The audio path at its edges (docs/robustness.md): non-finite samples never
// latch, meters and counters tell the truth about them, names a backend
// cannot hold are invalid graphs, denormal modes are set where DSP runs.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "common/rig.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "model/naming.h"
#include "model/validate.h"
#include "rt/denormals.h"
#include "rt/signal.h"

namespace aers::test {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Every stateful built-in on one path, plus a fused biquad chain: in ->
// gain -> hp -> lp -> peak (fused) -> delay -> meter -> mixer -> eq -> out.
model::GraphSpec EveryStatefulKind() {
  return GraphBuilder()
      .Input("in", 2)
      .Output("out", 2)
      .Node("g", "gain", 2, {{"gain_db", -3.0}})
      .Node("hp", "biquad", 2, {{"type", std::string("highpass")}, {"freq_hz", 40.0}})
      .Node("lp", "biquad", 2, {{"type", std::string("lowpass")}, {"freq_hz", 12000.0}})
      .Node("pk", "biquad", 2, {{"type", std::string("peaking")}, {"gain_db", 4.0}})
      .Node("d", "delay", 2, {{"delay_ms", 1.0}})
      .Node("m", "meter", 2, {{"window_ms", 10.0}})
      .Node("mix", "mixer", 2, {{"inputs", 2.0}})
      .Node("eq", "biquad", 2, {{"type", std::string("lowshelf")}, {"gain_db", 2.0}})
      .Chain({"in", "g", "hp", "lp", "pk", "d", "m", "mix", "eq", "out"})
      .Route("in", "mix.in2")
      .Build();
}

uint64_t Count(const engine::Engine& e, const std::string& name,
               uint64_t engine::SignalReport::*field) {
  for (const auto& r : e.SignalReports()) {
    if (r.name == name) return r.*field;
  }
  ADD_FAILURE() << "no signal report for " << name;
  return 0;
}

// Four NaN (or Inf) samples on a graph input are replaced by 0 where they
// enter: the output is exactly the output of the same input with zeros
// there, through every stateful kind, and the input counts them.
TEST(NonFiniteTest, InputBurstsAreReplacedWhereTheyEnterAndCounted) {
  for (float bad : {kNaN, kInf, -kInf}) {
    Rig clean, dirty;
    clean.Apply(EveryStatefulKind());
    dirty.Apply(EveryStatefulKind());
    Signal x = Sine(997.0, 0.5, 9600);
    Signal zeroed = x;
    Signal poisoned = x;
    for (size_t n = 3000; n < 3004; ++n) {
      zeroed[n] = 0.0f;
      poisoned[n] = bad;
    }
    const auto want = clean.Run({zeroed, x}, 9600);
    const auto got = dirty.Run({poisoned, x}, 9600);
    for (size_t c = 0; c < 2; ++c) {
      for (size_t n = 0; n < 9600; ++n) ASSERT_EQ(got[c][n], want[c][n]) << c << ":" << n;
    }
    EXPECT_EQ(Count(dirty.engine(), "in", &engine::SignalReport::nonfinite), 4u);
    EXPECT_EQ(Count(dirty.engine(), "out", &engine::SignalReport::nonfinite), 0u);
  }
}

// Non-finite values born inside the graph (a finite 3e38 through +24 dB is
// +Inf) reset the state of every filter and delay they reach, never reach
// the backend, and the audio is finite and sounding again one period after
// the input is sane. The meter counts what it saw instead of showing
// silence, and a parameter change is not needed to recover.
TEST(NonFiniteTest, OverflowInsideTheGraphDoesNotLatch) {
  Rig rig;
  auto spec = EveryStatefulKind();
  spec.nodes[0].params["gain_db"] = 24.0;
  rig.Apply(spec);
  Signal x = Sine(997.0, 0.01, 9600);
  for (size_t n = 3000; n < 3100; ++n) x[n] = (n % 2) ? 3e38f : -3e38f;
  const auto out = rig.Run({x, x}, 9600);
  for (const auto& ch : out) {
    for (float v : ch) ASSERT_FALSE(rt::IsNonFinite(v));
  }
  // Finite again within one period (64 frames) after the burst and the
  // delay line (1 ms = 48 frames) have passed; sounding, not muted.
  const size_t back = 3100 + 48 + 64;
  EXPECT_GT(Rms(out[0], back + 2400), 0.01);
  EXPECT_LT(Peak(out[0], back + 2400), 1.0);
  // The fused filters reset, and the delay wrote 0 for what reached it.
  EXPECT_GT(Count(rig.engine(), "hp", &engine::SignalReport::state_resets), 0u);
  EXPECT_GT(Count(rig.engine(), "d", &engine::SignalReport::nonfinite), 0u);
  EXPECT_EQ(Count(rig.engine(), "in", &engine::SignalReport::clipped), 200u);
  // The meter's last window (after recovery) reads the signal, not NaN.
  auto meter = rig.engine().ReadMeter("m");
  ASSERT_TRUE(meter.ok());
  EXPECT_TRUE(std::isfinite((*meter)[0].peak));
  EXPECT_GT((*meter)[0].peak, 0.0f);
}

// Where nothing stateful stands between the overflow and the backend, the
// meter counts the non-finite samples it saw (not silence) and the output
// replaces them.
TEST(NonFiniteTest, MeterAndOutputCountOverflow) {
  Rig rig;
  rig.Apply(GraphBuilder()
                .Input("in", 1)
                .Output("out", 1)
                .Node("g", "gain", 1, {{"gain_db", 24.0}})
                .Node("m", "meter", 1, {{"window_ms", 10.0}})
                .Chain({"in", "g", "m", "out"})
                .Build());
  Signal x = Sine(1000.0, 0.01, 4800);
  for (size_t n = 1000; n < 1004; ++n) x[n] = 3e38f;
  const auto out = rig.Run({x}, 4800);
  for (float v : out[0]) ASSERT_FALSE(rt::IsNonFinite(v));
  EXPECT_EQ(out[0][1001], 0.0f);
  EXPECT_EQ(Count(rig.engine(), "m", &engine::SignalReport::nonfinite), 4u);
  EXPECT_EQ(Count(rig.engine(), "out", &engine::SignalReport::nonfinite), 4u);
  auto meter = rig.engine().ReadMeter("m");
  ASSERT_TRUE(meter.ok());
  EXPECT_NEAR((*meter)[0].peak, 0.01f * 15.85f, 0.01f);  // the sine, +24 dB
}

TEST(NonFiniteTest, ClippedSamplesAreCountedNotChanged) {
  Rig rig;
  rig.Apply(GraphBuilder()
                .Input("in", 1)
                .Output("out", 1)
                .Node("m", "meter", 1, {{"window_ms", 10.0}})
                .Chain({"in", "m", "out"})
                .Build());
  Signal x = Sine(1000.0, 0.5, 4800);
  for (size_t n = 100; n < 110; ++n) x[n] = 1.5f;
  const auto out = rig.Run({x}, 4800);
  EXPECT_EQ(out[0][105], 1.5f);
  EXPECT_EQ(Count(rig.engine(), "in", &engine::SignalReport::clipped), 10u);
  EXPECT_EQ(Count(rig.engine(), "m", &engine::SignalReport::clipped), 10u);
  EXPECT_EQ(Count(rig.engine(), "out", &engine::SignalReport::clipped), 10u);
}

TEST(SanitizeTest, CountsOnTheBits) {
  float x[8] = {0.5f, kNaN, -kInf, 1.0f, -1.0000001f, 3e38f, 1e-40f, kInf};
  uint32_t clipped = 0;
  EXPECT_EQ(rt::SanitizeBlock(x, 8, &clipped), 3u);
  EXPECT_EQ(clipped, 2u);  // -1.0000001 and 3e38; 1.0 itself is not clipped
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_EQ(x[7], 0.0f);
  EXPECT_EQ(x[0], 0.5f);
}

// The vector loops against a sample-by-sample reference: every length up to
// three vectors and a long one (tails), NaN with any payload and sign, +-Inf,
// the largest finite values, +-1 and the next float above, subnormals.
TEST(SanitizeTest, CopyAndInPlaceAgreeWithTheRuleSampleBySample) {
  const uint32_t specials[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fffffffu, 0x7f800000u,
                               0xff800000u, 0x7f7fffffu, 0xff7fffffu, 0x3f800000u, 0xbf800000u,
                               0x3f800001u, 0xbf800001u, 0x00000001u, 0x80000000u};
  std::mt19937 rng(11);
  for (uint32_t frames : {0u, 1u, 3u, 4u, 7u, 8u, 9u, 15u, 16u, 17u, 23u, 1031u}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> src(frames);
      std::uniform_real_distribution<float> level(-2.0f, 2.0f);
      for (auto& v : src) v = level(rng);
      for (uint32_t k = 0; k < frames / 3; ++k) {
        const uint32_t bits = specials[rng() % std::size(specials)];
        std::memcpy(&src[rng() % frames], &bits, sizeof(bits));
      }
      uint32_t want_bad = 0;
      uint32_t want_clipped = 0;
      std::vector<float> want(frames);
      for (uint32_t n = 0; n < frames; ++n) {
        if (!std::isfinite(src[n])) {
          ++want_bad;
          want[n] = 0.0f;
        } else {
          want_clipped += std::fabs(src[n]) > 1.0f ? 1u : 0u;
          want[n] = src[n];
        }
      }
      const auto same_bits = [&](const std::vector<float>& got) {
        return frames == 0 || std::memcmp(got.data(), want.data(), frames * sizeof(float)) == 0;
      };
      std::vector<float> copy(frames, 9.0f);
      uint32_t clipped = 0;
      EXPECT_EQ(rt::SanitizeCopy(src.data(), copy.data(), frames, &clipped), want_bad) << frames;
      EXPECT_EQ(clipped, want_clipped) << frames;
      EXPECT_TRUE(same_bits(copy)) << frames << " frames, copy";
      std::vector<float> in_place = src;
      clipped = 0;
      EXPECT_EQ(rt::SanitizeBlock(in_place.data(), frames, &clipped), want_bad) << frames;
      EXPECT_EQ(clipped, want_clipped) << frames;
      EXPECT_TRUE(same_bits(in_place)) << frames << " frames, in place";
      in_place = src;
      clipped = 0;
      EXPECT_EQ(rt::SanitizeCopy(in_place.data(), in_place.data(), frames, &clipped), want_bad);
      EXPECT_EQ(clipped, want_clipped) << frames << " frames, copy onto itself";
      EXPECT_TRUE(same_bits(in_place)) << frames << " frames, copy onto itself";
    }
  }
}

TEST(DenormalsTest, ScopedModeIsSetAndRestored) {
  if (!rt::SupportsFlushToZero()) GTEST_SKIP() << "no FTZ on this architecture";
  ASSERT_FALSE(rt::FlushToZeroEnabled());
  {
    rt::ScopedFlushToZero ftz;
    EXPECT_TRUE(rt::FlushToZeroEnabled());
    volatile float tiny = 1e-30f;
    volatile float product = tiny * 1e-15f;  // subnormal without FTZ
    EXPECT_EQ(product, 0.0f);
  }
  EXPECT_FALSE(rt::FlushToZeroEnabled());
}

// --- names -----------------------------------------------------------------

std::vector<std::string> Paths(const std::vector<model::Issue>& issues) {
  std::vector<std::string> out;
  for (const auto& i : issues) out.push_back(i.path + ": " + i.message);
  return out;
}

TEST(NamingTest, DerivedBackendPortNamesMustBeUnique) {
  auto kinds = dsp::MakeBuiltinRegistry();
  // main (2 ch) -> main_1, main_2; an input main_1 -> main_1 again.
  auto spec = GraphBuilder().Input("main", 2).Input("main_1", 1).Output("out", 1).Build();
  auto issues = model::ValidateGraph(spec, *kinds);
  ASSERT_EQ(issues.size(), 1u) << testing::PrintToString(Paths(issues));
  EXPECT_EQ(issues[0].path, "inputs[1].name");
  EXPECT_THAT(issues[0].message, HasSubstr("'main_1'"));
  EXPECT_THAT(issues[0].message, HasSubstr("inputs[0] 'main' channel 1"));
  // Inputs and outputs share the client's port namespace.
  spec = GraphBuilder().Input("x", 1).Output("y", 2).Output("y_2", 1).Build();
  issues = model::ValidateGraph(spec, *kinds);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "outputs[1].name");
}

TEST(NamingTest, LengthsComeFromTheBackend) {
  auto kinds = dsp::MakeBuiltinRegistry();
  model::ValidationContext ctx;
  ctx.names.client_name = std::string(60, 'c');
  ctx.names.max_port_name_bytes = 70;  // "ccc...c:" (61 bytes) leaves 9
  auto spec = GraphBuilder().Input("in", 2).Output("outputs123", 1).Output("o", 1).Build();
  auto issues = model::ValidateGraph(spec, *kinds, ctx);
  ASSERT_EQ(issues.size(), 1u) << testing::PrintToString(Paths(issues));
  EXPECT_EQ(issues[0].path, "outputs[0].name");
  EXPECT_THAT(issues[0].message, HasSubstr("at most 70"));
  // Names longer than the policy's 64 bytes, whatever the backend.
  spec = GraphBuilder().Input(std::string(65, 'a'), 1).Output("o", 1).Build();
  issues = model::ValidateGraph(spec, *kinds);
  ASSERT_FALSE(issues.empty());
  EXPECT_EQ(issues[0].path, "inputs[0].name");
  EXPECT_THAT(issues[0].message, HasSubstr("at most 64"));
}

TEST(NamingTest, EngineRefusesAndKeepsTheRunningGraph) {
  Rig rig;
  const auto good = GraphBuilder().Input("main", 2).Output("out", 2).Chain({"main", "out"}).Build();
  rig.Apply(good);
  const uint64_t rev = rig.engine().revision();
  auto bad = good;
  bad.inputs.push_back({"main_1", 1, {}});
  auto r = rig.engine().Apply(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("inputs[1].name"));
  EXPECT_EQ(rig.engine().revision(), rev);
  EXPECT_EQ(rig.engine().spec(), good);
}

TEST(NamingTest, ConfigFileFailsAtStartWithLineAndColumn) {
  auto kinds = dsp::MakeBuiltinRegistry();
  const std::string yaml =
      "version: 1\n"
      "inputs:\n"
      "  - {name: main, channels: 2}\n"
      "  - {name: main_1, channels: 1}\n"
      "outputs: [{name: out}]\n";
  auto c = config::ParseConfig(yaml, "edge.yaml", *kinds);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("edge.yaml:4:"));
  EXPECT_THAT(c.status().message(), HasSubstr("inputs[1].name"));
  // The client name obeys the policy and the backend's limit.
  model::NamingLimits limits;
  limits.max_client_name_bytes = 8;
  auto long_client = config::ParseConfig(
      "version: 1\nbackend: {jack: {client_name: aersd-long}}\noutputs: [{name: out}]\n", "c.yaml",
      *kinds, nullptr, &limits);
  ASSERT_FALSE(long_client.ok());
  EXPECT_THAT(long_client.status().message(), HasSubstr("backend.jack.client_name"));
  auto odd_client = config::ParseConfig(
      "version: 1\nbackend: {jack: {client_name: 'aers: x'}}\noutputs: [{name: out}]\n", "c.yaml",
      *kinds);
  ASSERT_FALSE(odd_client.ok());
  EXPECT_THAT(odd_client.status().message(), HasSubstr("backend.jack.client_name"));
}

TEST(NamingTest, IoLayoutIdentifiesBackendPorts) {
  const auto a = GraphBuilder().Input("in", 2).Output("out", 2).Build();
  auto b = a;
  b.nodes.push_back({"g", "gain", 2, {}});  // nodes do not change the ports
  EXPECT_EQ(model::IoLayoutId(a), model::IoLayoutId(b));
  auto c = a;
  c.outputs.push_back({"mon", 1, {}});
  EXPECT_NE(model::IoLayoutId(a), model::IoLayoutId(c));
  auto d = a;
  d.outputs[0].name = "out2";
  EXPECT_NE(model::IoLayoutId(a), model::IoLayoutId(d));
}

// A config path that is not a regular file is a clear error, never a hang
// (FIFO), an endless read (/dev/zero) or an abort (directory).
TEST(ConfigReadTest, OnlyRegularFilesOfBoundedSize) {
  char tmpl[] = "/tmp/aers-config-read-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  auto dir_read = config::ReadConfigText(dir);
  ASSERT_FALSE(dir_read.ok());
  EXPECT_THAT(dir_read.status().message(), HasSubstr("is a directory"));
  EXPECT_THAT(dir_read.status().message(), HasSubstr(dir));
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto fifo_read = config::ReadConfigText(fifo);  // no writer: must not block
  ASSERT_FALSE(fifo_read.ok());
  EXPECT_THAT(fifo_read.status().message(), HasSubstr("not a regular file"));
  auto dev = config::ReadConfigText("/dev/zero");
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(dev.status().message(), HasSubstr("not a regular file"));
  const std::string big = dir + "/big.yaml";
  {
    std::ofstream out(big);
    const std::string line(1023, '#');
    for (int i = 0; i < 17 * 1024; ++i) out << line << '\n';
  }
  auto big_read = config::ReadConfigText(big);
  ASSERT_FALSE(big_read.ok());
  EXPECT_THAT(big_read.status().message(), HasSubstr("larger than 16 MiB"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aers::test

namespace aers::test {
namespace {

// An output nothing is routed to (found by control_fuzz: the plan indexed
// one past its empty source list, undefined behaviour under UBSan).
TEST(Plan, AnOutputWithNoSourcesIsSilence) {
  Rig rig;
  rig.Apply(GraphBuilder().Output("out", 2).Build());
  const auto out = rig.Run({}, 256);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Peak(out[0]), 0.0);
  EXPECT_EQ(Peak(out[1]), 0.0);
  rig.Apply(GraphBuilder().Input("in").Output("out").Node("g", "gain").Route("in", "g").Build());
  EXPECT_EQ(Peak(rig.Run({Sine(1000, 0.5, 256)}, 256)[0]), 0.0);
}

}  // namespace
}  // namespace aers::test

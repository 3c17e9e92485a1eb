// The peq kind: an AutoEQ-style Equalizer APO file gives the same output as
// the equivalent chain of biquad nodes and a gain; its errors are the EQ
// file's LINE:COLUMN under the node's field; the gain glides; no allocation.
#include <filesystem>
#include <fstream>

#include "common/process_alloc.h"
#include "common/rig.h"
#include "dsp/builtins.h"
#include "gmock/gmock.h"
#include "model/validate.h"

namespace aers::test {
namespace {

namespace fs = std::filesystem;
constexpr double kRate = 48000.0;

const fs::path kData = fs::path(AERS_SOURCE_ROOT) / "tests" / "data" / "eq_apo";

std::unique_ptr<model::KindRegistry> Kinds() {
  return dsp::MakeBuiltinRegistry(dsp::DataDirs{kData, {kData}});
}

Signal Noise(size_t frames) {
  Signal s(frames);
  uint32_t x = 12345;
  for (auto& v : s) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<float>(static_cast<double>(x >> 8) / 16777216.0 - 0.5);
  }
  return s;
}

TEST(Peq, AutoEqFileEqualsTheEquivalentBiquads) {
  auto kinds = Kinds();
  const Signal x = Noise(48000);
  RigOptions o;
  o.kinds = kinds.get();
  o.period_frames = 256;
  Rig peq(o);
  peq.Apply(GraphBuilder()
                .Input("in", 2)
                .Node("eq", "peq", 2, {{"file", std::string("autoeq_headphone.txt")}})
                .Output("out", 2)
                .Chain({"in", "eq", "out"})
                .Build());
  // The same file written out by hand as the biquad kind's parameters.
  struct F {
    const char* type;
    double fc, gain, q;
  };
  const std::vector<F> filters = {{"lowshelf", 105, 5.8, 0.70},   {"peaking", 62, -1.9, 0.45},
                                  {"peaking", 176, -3.1, 0.91},   {"peaking", 1120, 2.4, 1.68},
                                  {"peaking", 2380, -4.7, 2.35},  {"peaking", 3650, 3.9, 3.12},
                                  {"peaking", 5210, -2.6, 4.60},  {"peaking", 7400, 1.8, 2.05},
                                  {"peaking", 11200, -3.3, 1.30}, {"highshelf", 10000, -1.5, 0.70}};
  GraphBuilder b;
  b.Input("in", 2).Output("out", 2);
  std::vector<std::string> chain = {"in"};
  for (size_t i = 0; i < filters.size(); ++i) {
    const std::string name = "f" + std::to_string(i);
    b.Node(name, "biquad", 2,
           {{"type", std::string(filters[i].type)},
            {"freq_hz", filters[i].fc},
            {"gain_db", filters[i].gain},
            {"q", filters[i].q}});
    chain.push_back(name);
  }
  b.Node("pre", "gain", 2, {{"gain_db", -6.2}});
  chain.push_back("pre");
  chain.push_back("out");
  b.Chain(chain);
  Rig ref(o);
  ref.Apply(b.Build());
  const auto y = peq.Run({x, x}, x.size());
  const auto r = ref.Run({x, x}, x.size());
  double worst = 0.0;
  for (int c = 0; c < 2; ++c) {
    for (size_t n = 0; n < x.size(); ++n) {
      worst =
          std::max(worst, std::fabs(static_cast<double>(y[c][n]) - static_cast<double>(r[c][n])));
    }
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_GT(Rms(y[0]), 0.05);  // not silence
}

TEST(Peq, FileErrorsCarryTheirLineAndColumnUnderTheField) {
  const fs::path dir = fs::temp_directory_path() / ("aers-peq-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "bad.txt") << "Preamp: -3 dB\nFilter 1: ON PK Fc 100 Hz Gain x dB Q 1\n"
                                    "Filter 2: ON XX Fc 100 Hz\n";
  auto kinds = dsp::MakeBuiltinRegistry(dsp::DataDirs{dir, {dir}});
  const auto g = GraphBuilder()
                     .Input("in", 1)
                     .Node("eq", "peq", 1, {{"file", std::string("bad.txt")}})
                     .Output("out", 1)
                     .Chain({"in", "eq", "out"})
                     .Build();
  const auto issues = model::ValidateGraph(g, *kinds, {kRate});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "nodes[0].params.file");
  EXPECT_THAT(issues[0].message, ::testing::HasSubstr("bad.txt:2:"));
  EXPECT_THAT(issues[0].message, ::testing::HasSubstr("bad.txt:3:14:"));
  auto missing = g;
  missing.nodes[0].params.clear();
  EXPECT_THAT(model::ValidateGraph(missing, *kinds, {kRate})[0].message,
              ::testing::HasSubstr("a peq node needs file"));
  auto outside = g;
  outside.nodes[0].params["file"] = (kData / "autoeq_headphone.txt").string();
  EXPECT_THAT(model::ValidateGraph(outside, *kinds, {kRate})[0].message,
              ::testing::HasSubstr("outside the data directories"));
  fs::remove_all(dir);
}

TEST(Peq, GainGlidesWithoutAllocation) {
  const std::string file = (kData / "autoeq_headphone.txt").string();
  EXPECT_EQ(AllocationsWhileProcessing("peq", 2, {{"file", file}},
                                       [](rt::Processor& p) { p.SetParam(1, 0, -20.0); }),
            0u);
  auto kinds = Kinds();
  RigOptions o;
  o.kinds = kinds.get();
  Rig rig(o);
  auto spec = GraphBuilder()
                  .Input("in", 1)
                  .Node("eq", "peq", 1, {{"file", std::string("autoeq_headphone.txt")}})
                  .Output("out", 1)
                  .Chain({"in", "eq", "out"})
                  .Build();
  rig.Apply(spec);
  const Signal tone = Sine(1000.0, 0.5, 9600);
  (void)rig.Run({tone}, 9600);
  spec.nodes[0].params["gain_db"] = -20.0;
  auto r = rig.engine().Apply(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->replanned);
  const auto y = rig.Run({tone}, 9600)[0];
  EXPECT_LT(MaxJump(y), 0.1);
}

}  // namespace
}  // namespace aers::test

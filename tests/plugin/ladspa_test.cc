// LADSPA behind the same gate: Debian's amp.so (ladspa-sdk), pinned by hash,
// admitted from the allow-listed /usr/lib/ladspa, processing audio through
// the engine.
#include <unistd.h>

#include "gmock/gmock.h"
#include "plugin/plugin_fixture.h"

namespace aers::plugin::test {
namespace {

using aers::test::Sine;
using ::testing::HasSubstr;

constexpr const char* kAmp = "/usr/lib/ladspa/amp.so";

class LadspaTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !defined(AERS_HAVE_LADSPA)
    GTEST_SKIP() << "built without ladspa.h";
#endif
    if (::access(kAmp, R_OK) != 0) GTEST_SKIP() << kAmp << " missing (apt-get install ladspa-sdk)";
  }
  void TearDown() override {
    EXPECT_EQ(MemfdLibraries(), 0);
  }

  PluginSpec Amp(const std::string& module = kAmp) {
    PluginSpec s;
    s.name = "amp";
    s.format = "ladspa";
    s.module = module;
    s.so_path = kAmp;
    s.algorithm = "blake2b";
    s.allowed = {"amp_mono", "amp"};
    s.extra = "labels:\n  - amp_mono\n  - {label: amp_stereo, kind: amp}\n";
    return s;
  }
  PluginPolicy Policy() {
    auto p = env_.Policy();
    p.allowed_system_dirs = {"/usr/lib/ladspa"};
    return p;
  }

  PluginEnv env_;
};

TEST_F(LadspaTest, AmpFromTheSystemDirectoryProcessesAudio) {
  env_.AddPlugin(Amp());
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  auto r = loader.Load("amp", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kinds, (std::vector<std::string>{"amp/amp_mono", "amp/amp"}));
  const model::NodeKind* mono = registry->Find("amp/amp_mono");
  ASSERT_NE(mono, nullptr);
  ASSERT_EQ(mono->params().size(), 1u);
  EXPECT_EQ(mono->params()[0].name, "gain");
  EXPECT_EQ(std::get<double>(mono->params()[0].default_value), 1.0);
  EXPECT_EQ(mono->params()[0].min, 0.0);  // bounded below at 0, unbounded above

  // Two channels of a mono LADSPA plugin: one LADSPA instance per channel.
  Rig rig({.kinds = registry.get()});
  auto spec = GraphBuilder()
                  .Input("in", 2)
                  .Output("out", 2)
                  .Node("a", "amp/amp_mono", 2, {{"gain", 0.5}})
                  .Chain({"in", "a", "out"})
                  .Build();
  auto applied = rig.engine().Apply(spec);
  ASSERT_TRUE(applied.ok()) << applied.status();
  const Signal left = Sine(440.0, 0.8, 4800), right = Sine(1000.0, 0.4, 4800);
  auto out = rig.Run({left, right}, 4800);
  // amp multiplies exactly; skip the 5 ms fade-in of a new node.
  for (size_t n = 480; n < 4800; ++n) {
    ASSERT_FLOAT_EQ(out[0][n], 0.5f * left[n]) << n;
    ASSERT_FLOAT_EQ(out[1][n], 0.5f * right[n]) << n;
  }
  // Live parameter: reaches the control port on the audio thread.
  auto e = rig.engine().SetParameter("a", "gain", 2.0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->replanned);
  out = rig.Run({left, right}, 4800);
  EXPECT_FLOAT_EQ(out[0][1000], 2.0f * left[1000]);

  // The stereo label is exactly two channels wide.
  auto stereo = GraphBuilder()
                    .Input("in", 2)
                    .Output("out", 2)
                    .Node("s", "amp/amp", 2, {{"gain", 0.25}})
                    .Chain({"in", "s", "out"})
                    .Build();
  ASSERT_TRUE(rig.engine().Apply(stereo).ok());
  out = rig.Run({left, right}, 4800);
  EXPECT_FLOAT_EQ(out[0][4000], 0.25f * left[4000]);
  EXPECT_FLOAT_EQ(out[1][4000], 0.25f * right[4000]);
  auto wrong = GraphBuilder()
                   .Input("in")
                   .Output("out")
                   .Node("s", "amp/amp", 1)
                   .Chain({"in", "s", "out"})
                   .Build();
  auto bad = rig.engine().Apply(wrong);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("channels"));
}

TEST_F(LadspaTest, ModuleCopiedIntoThePluginDirectoryLoadsToo) {
  env_.AddPlugin(Amp("amp.so"));
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(env_.Policy());  // no system dirs needed
  auto r = loader.Load("amp", *registry);
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(LadspaTest, SystemDirectoryNotAllowListedIsRefused) {
  env_.AddPlugin(Amp());
  auto registry = dsp::MakeBuiltinRegistry();
  RecordingAudit audit;
  PluginLoader loader(env_.Policy(), &audit);
  auto r = loader.Load("amp", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kModuleOutsideAllowedDirs);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("(module_outside_allowed_dirs)"));
  EXPECT_EQ(KindNames(*registry), KindNames(*dsp::MakeBuiltinRegistry()));
}

TEST_F(LadspaTest, WrongHashAndMissingLabelAreRefused) {
  auto s = Amp();
  s.hash = std::string(64, '1');
  env_.AddPlugin(s);
  auto registry = dsp::MakeBuiltinRegistry();
  PluginLoader loader(Policy());
  auto r = loader.Load("amp", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kHashMismatch);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("(hash_mismatch)"));
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("seen blake2b:" + FileHash(kAmp, HashAlgorithm::kBlake2b)));

  s = Amp();
  s.allowed = {"nope"};
  s.extra = "labels: [{label: nope}]\n";
  env_.AddPlugin(s);
  r = loader.Load("amp", *registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalCodeOf(r.status()), RefusalCode::kLadspaLabelMissing);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("(ladspa_label_missing)"));
  EXPECT_EQ(registry->Find("amp/nope"), nullptr);
}

}  // namespace
}  // namespace aers::plugin::test

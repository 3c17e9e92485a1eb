// Engine behaviour: all-or-nothing edits, revisions, state carry-over,
// crossfades, fusion, latency.
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>

#include "common/rig.h"
#include "compile/compile.h"
#include "dsp/builtins.h"
#include "dsp/kind_base.h"

namespace aers::test {
namespace {

model::GraphSpec ToneChain(double level_db = -6.0) {
  return GraphBuilder()
      .Node("t", "tone", 1, {{"freq_hz", 100.0}, {"level_db", level_db}})
      .Node("g", "gain", 1, {{"gain_db", 0.0}})
      .Output("out", 1)
      .Chain({"t", "g", "out"})
      .Build();
}

TEST(Engine, InvalidEditChangesNothing) {
  Rig rig;
  rig.Apply(ToneChain());
  const auto before_spec = rig.engine().spec();
  const auto before_rev = rig.engine().revision();
  const auto before = rig.Run({}, 4800);

  auto bad = before_spec;
  bad.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("nowhere")});
  bad.nodes[1].params["gain_db"] = -12.0;  // a valid change riding along must not apply
  auto r = rig.engine().Apply(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("routes[2].to"), absl::string_view::npos)
      << r.status().message();
  EXPECT_EQ(rig.engine().spec(), before_spec);
  EXPECT_EQ(rig.engine().revision(), before_rev);
  const auto after = rig.Run({}, 4800);
  EXPECT_NEAR(Peak(after[0]), Peak(before[0]), 1e-6) << "audio level changed";

  auto bad_param = rig.engine().SetParameter("g", "gain_db", 99.0);
  EXPECT_EQ(bad_param.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rig.engine().SetParameter("zz", "gain_db", 0.0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(rig.engine().SetParameter("g", "freq_hz", 1.0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(rig.engine().revision(), before_rev);
}

TEST(Engine, OutOfMemoryWhileBuildingANodeRefusesTheEdit) {
  // A kind whose instances cannot be built for lack of memory (a long
  // impulse response, a plugin's state): the edit is refused with
  // RESOURCE_EXHAUSTED and the running graph is untouched.
  auto kinds = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      kinds
          ->Add(std::make_shared<dsp::TableKind>(
              "hungry", "throws std::bad_alloc", std::vector<model::ParamDesc>{}, dsp::InOutLayout,
              [](const model::NodeSpec&, const std::map<std::string, model::ParamValue>&,
                 const rt::StreamFormat&) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
                throw std::bad_alloc();
              }))
          .ok());
  RigOptions o;
  o.kinds = kinds.get();
  Rig rig(o);
  rig.Apply(ToneChain());
  const auto before_spec = rig.engine().spec();
  const auto before_rev = rig.engine().revision();
  auto next = before_spec;
  next.nodes.push_back({"h", "hungry", 1, {}});
  auto r = rig.engine().Apply(next);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("node 'h': out of memory"), absl::string_view::npos)
      << r.status().message();
  EXPECT_EQ(rig.engine().spec(), before_spec);
  EXPECT_EQ(rig.engine().revision(), before_rev);
}

TEST(Engine, ReadersNeverWaitForAnEditBeingBuilt) {
  // A kind whose node takes as long to build as the test says (a long
  // impulse response, a plugin loading): while the edit builds it, the
  // graph, the revision and meters are read without waiting, and what they
  // show is the graph before the edit.
  std::mutex mu;
  std::condition_variable cv;
  bool building = false, release = false;
  auto kinds = dsp::MakeBuiltinRegistry();
  ASSERT_TRUE(
      kinds
          ->Add(std::make_shared<dsp::TableKind>(
              "slow", "builds when released", std::vector<model::ParamDesc>{}, dsp::InOutLayout,
              [&](const model::NodeSpec& n, const std::map<std::string, model::ParamValue>&,
                  const rt::StreamFormat& f) -> absl::StatusOr<std::unique_ptr<rt::Processor>> {
                std::unique_lock lock(mu);
                building = true;
                cv.notify_all();
                cv.wait(lock, [&] { return release; });
                const model::NodeKind* gain = kinds->Find("gain");
                const model::NodeSpec g{n.name, "gain", n.channels, {}};
                return gain->Instantiate(g, gain->ResolveParams(g, f.sample_rate_hz), f);
              }))
          .ok());
  RigOptions o;
  o.kinds = kinds.get();
  Rig rig(o);
  auto spec = ToneChain();
  spec.nodes.push_back({"m", "meter", 1, {}});
  spec.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("m")});
  rig.Apply(spec);
  const auto before_rev = rig.engine().revision();
  auto next = spec;
  next.nodes.push_back({"s", "slow", 1, {}});
  std::thread edit([&] {
    auto r = rig.engine().Apply(next);
    EXPECT_TRUE(r.ok()) << r.status();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return building; });
  }
  // The edit is in the middle of building "s" and will stay there until
  // released: each read below would hang if it waited for the edit.
  EXPECT_EQ(rig.engine().revision(), before_rev);
  EXPECT_EQ(rig.engine().spec(), spec);
  EXPECT_TRUE(rig.engine().ReadMeter("m").ok());
  EXPECT_EQ(rig.engine().MeterNodes().size(), 1u);
  EXPECT_TRUE(rig.engine().Check(next).ok());
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  edit.join();
  EXPECT_EQ(rig.engine().revision(), before_rev + 1);
  EXPECT_NE(rig.engine().spec().FindNode("s"), nullptr);
}

TEST(Engine, RevisionConflictIsAbortedAndChangesNothing) {
  Rig rig;
  rig.Apply(ToneChain());
  const uint64_t rev = rig.engine().revision();
  ASSERT_TRUE(rig.engine().SetParameter("g", "gain_db", -3.0, rev).ok());
  auto stale = rig.engine().SetParameter("g", "gain_db", -9.0, rev);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(std::get<double>(rig.engine().spec().FindNode("g")->params.at("gain_db")), -3.0);
  EXPECT_EQ(rig.engine().revision(), rev + 1);
}

TEST(Engine, ParameterChangeNeedsNoNewPlan) {
  Rig rig;
  rig.Apply(ToneChain());
  auto r = rig.engine().SetParameter("g", "gain_db", -6.0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->replanned);
  auto spec = rig.engine().spec();
  spec.nodes[0].params["freq_hz"] = 200.0;
  r = rig.engine().Apply(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->replanned);
  const auto y = rig.Run({}, 48000);
  EXPECT_NEAR(ToDb(Peak(y[0], 24000)), -12.0, 0.02);
}

TEST(Engine, NodeStateSurvivesUnrelatedEdits) {
  Rig rig(48000.0, 64);
  auto spec = GraphBuilder()
                  .Input("in")
                  .Node("d", "delay", 1, {{"delay_ms", 100.0}, {"max_delay_ms", 200.0}})
                  .Output("out")
                  .Chain({"in", "d", "out"})
                  .Build();
  rig.Apply(spec);
  Signal x(4800 + 64, 0.0f);
  x[1000] = 1.0f;               // comes out at 1000 + 4800
  auto y = rig.Run({x}, 2000);  // the impulse is inside the delay line now
  // Unrelated edits: add a node, add an output route from it, change a param elsewhere.
  spec.nodes.push_back({"side", "tone", 1, {{"level_db", -120.0}}});
  spec.outputs.push_back({"mon", 1, {}});
  spec.routes.push_back({model::Endpoint::Parse("side"), model::Endpoint::Parse("mon")});
  // Output channel count changes: the rig follows the new spec.
  rig.Apply(spec);
  Signal rest(x.begin() + 2000, x.end());
  auto z = rig.Run({rest}, 5000);
  ASSERT_EQ(z.size(), 2u);
  for (size_t n = 0; n < z[0].size(); ++n) {
    ASSERT_EQ(z[0][n], n + 2000 == 5800 ? 1.0f : 0.0f) << "frame " << n + 2000;
  }
}

TEST(Engine, FilterStateCarriesOverEdits) {
  // A lowpass fed a continuous sine: adding an unrelated node must not reset
  // the filter (a reset would show as a transient at the edit).
  Rig rig(48000.0, 64);
  auto spec = GraphBuilder()
                  .Input("in")
                  .Node("lp", "biquad", 1, {{"type", std::string("lowpass")}, {"freq_hz", 300.0}})
                  .Output("out")
                  .Chain({"in", "lp", "out"})
                  .Build();
  rig.Apply(spec);
  const Signal x = Sine(100.0, 0.5, 48000);
  auto y1 = rig.Run({Signal(x.begin(), x.begin() + 24000)}, 24000);
  spec.nodes.push_back({"idle", "gain", 1, {}});
  rig.Apply(spec);
  auto y2 = rig.Run({Signal(x.begin() + 24000, x.end())}, 24000);
  Signal joined = y1[0];
  joined.insert(joined.end(), y2[0].begin(), y2[0].end());
  EXPECT_LT(MaxJump(joined, 12000),
            2.0 * MaxJump(Signal(joined.begin() + 12000, joined.begin() + 23000)));
}

TEST(Engine, RouteChangeIsCrossfaded) {
  Rig rig(48000.0, 64, 5.0);
  // Two tones in different phase; switch the output from one to the other.
  auto spec = GraphBuilder()
                  .Node("a", "tone", 1, {{"freq_hz", 100.0}, {"level_db", -6.0}})
                  .Node("b", "tone", 1, {{"freq_hz", 150.0}, {"level_db", -6.0}})
                  .Output("out")
                  .Route("a", "out")
                  .Build();
  rig.Apply(spec);
  auto y1 = rig.Run({}, 1200);  // a at 100 Hz has phase 0.5 cycles... b differs
  spec.routes = {{model::Endpoint::Parse("b"), model::Endpoint::Parse("out")}};
  rig.Apply(spec);
  auto y2 = rig.Run({}, 4800);
  Signal joined = y1[0];
  joined.insert(joined.end(), y2[0].begin(), y2[0].end());
  const double natural = 2 * std::numbers::pi * 150.0 / 48000.0 * 0.5;
  EXPECT_LT(MaxJump(joined), 2.0 * natural);
  // After the fade, only b is heard.
  EXPECT_NEAR(ToDb(Peak(y2[0], 1000)), -6.0, 0.05);
}

TEST(Engine, HardSwitchWithoutCrossfadeWouldClick) {
  // The same switch with the crossfade disabled shows what the fade prevents
  // (keeps the test above honest).
  Rig rig(48000.0, 64, 0.0);
  auto spec = GraphBuilder()
                  .Node("a", "tone", 1, {{"freq_hz", 100.0}, {"level_db", -6.0}})
                  .Node("b", "tone", 1, {{"freq_hz", 150.0}, {"level_db", -6.0}})
                  .Output("out")
                  .Route("a", "out")
                  .Build();
  rig.Apply(spec);
  auto y1 = rig.Run({}, 1200);
  spec.routes = {{model::Endpoint::Parse("b"), model::Endpoint::Parse("out")}};
  rig.Apply(spec);
  auto y2 = rig.Run({}, 4800);
  Signal joined = y1[0];
  joined.insert(joined.end(), y2[0].begin(), y2[0].end());
  const double natural = 2 * std::numbers::pi * 150.0 / 48000.0 * 0.5;
  EXPECT_GT(MaxJump(joined), 5.0 * natural);
}

TEST(Engine, RemovedNodeFadesOutAndNewNodeFadesIn) {
  Rig rig(48000.0, 64, 5.0);
  auto spec = ToneChain(-6.0);
  rig.Apply(spec);
  auto y1 = rig.Run({}, 960);
  // Replace g with a new node h (fresh instance) on the same path.
  spec.nodes[1] = {"h", "gain", 1, {{"gain_db", 0.0}}};
  spec.routes = {{model::Endpoint::Parse("t"), model::Endpoint::Parse("h")},
                 {model::Endpoint::Parse("h"), model::Endpoint::Parse("out")}};
  rig.Apply(spec);
  auto y2 = rig.Run({}, 960);
  Signal joined = y1[0];
  joined.insert(joined.end(), y2[0].begin(), y2[0].end());
  const double natural = 2 * std::numbers::pi * 100.0 / 48000.0 * 0.5;
  EXPECT_LT(MaxJump(joined), 1.5 * natural);
}

// A path of several new nodes is faded in once, where it meets the old
// graph, and a path of several nodes going away is faded out once: the sum
// of the old and the new path stays at the level of either (linear
// crossfade, equal signals). Ramping every new edge made the new path's gain
// g^k along k edges: a dip mid-fade (-6 dB for three) and a steep rise at
// its end.
TEST(Engine, APathOfNewNodesIsFadedOnceNotPerEdge) {
  Rig rig(48000.0, 64, 5.0);
  auto direct = GraphBuilder().Input("in").Output("out").Route("in", "out").Build();
  auto through = GraphBuilder()
                     .Input("in")
                     .Node("a", "gain", 1, {{"gain_db", 0.0}})
                     .Node("b", "gain", 1, {{"gain_db", 0.0}})
                     .Node("c", "gain", 1, {{"gain_db", 0.0}})
                     .Output("out")
                     .Chain({"in", "a", "b", "c", "out"})
                     .Build();
  const Signal ones(1024, 0.5f);
  rig.Apply(direct);
  rig.Run({ones}, 256);
  for (const auto* next : {&through, &direct}) {
    rig.Apply(*next);
    const auto y = rig.Run({ones}, 1024);  // the 240-frame fade and after
    for (size_t n = 0; n < y[0].size(); ++n) {
      ASSERT_NEAR(y[0][n], 0.5f, 1e-6f) << (next == &through ? "in" : "out") << ", frame " << n;
    }
  }
}

// An edit never replaces a crossfade the audio thread has not taken yet:
// the replacement would fade from a graph the audio never reached (a cut).
// Here no period runs between the edits (a stalled audio thread): C waits
// behind B, and the audio goes A -> B -> C in two fades.
TEST(Engine, AnUntakenCrossfadeIsNeverReplaced) {
  Rig rig(48000.0, 64, 5.0);
  auto only = [](const char* name, double hz) {
    return GraphBuilder()
        .Node(name, "tone", 1, {{"freq_hz", hz}, {"level_db", -6.0}})
        .Output("out")
        .Route(name, "out")
        .Build();
  };
  rig.Apply(only("a", 100.0));
  Signal all = rig.Run({}, 1000)[0];  // a is not near a zero crossing here
  const uint64_t settled = rig.engine().runner().settled_seq();
  rig.Apply(only("b", 150.0));  // B: published, not taken (no period runs)
  rig.Apply(only("c", 120.0));  // C: must not replace B
  // Run until C's fade has ended (the publisher hands C over once B's fade
  // has run), then a little more.
  while (rig.engine().runner().settled_seq() < settled + 2) {
    const auto y = rig.Run({}, 64);
    all.insert(all.end(), y[0].begin(), y[0].end());
    std::this_thread::yield();
  }
  const auto tail = rig.Run({}, 960);
  all.insert(all.end(), tail[0].begin(), tail[0].end());
  const double natural = 2 * std::numbers::pi * 150.0 / 48000.0 * 0.5;
  EXPECT_LT(MaxJump(all), 2.0 * natural);
  EXPECT_EQ(rig.engine().runner().settled_seq(), settled + 2) << "B's fade was skipped";
}

TEST(Engine, ChangingChannelsBuildsAFreshInstance) {
  Rig rig;
  auto spec = ToneChain();
  rig.Apply(spec);
  spec.nodes[0].channels = 2;
  spec.nodes[1].channels = 2;
  spec.outputs[0].channels = 2;
  auto r = rig.engine().Apply(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->replanned);
  const auto y = rig.Run({}, 4800);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_NEAR(ToDb(Peak(y[1], 2400)), -6.0, 0.05);
}

TEST(Engine, SetFormatRecompilesForNewRate) {
  Rig rig(48000.0, 256);
  rig.Apply(ToneChain());
  const uint64_t rev = rig.engine().revision();
  ASSERT_TRUE(rig.engine().SetFormat({44100.0, 256}).ok());
  EXPECT_EQ(rig.engine().revision(), rev);
  EXPECT_EQ(rig.engine().format().sample_rate_hz, 44100.0);
  const auto y = rig.Run({}, 44100);
  int crossings = 0;
  for (size_t n = 1; n < y[0].size(); ++n) crossings += (y[0][n - 1] < 0.0f && y[0][n] >= 0.0f);
  EXPECT_NEAR(crossings, 100, 1);
  EXPECT_FALSE(rig.engine().SetFormat({0.0, 256}).ok());
}

TEST(Engine, AValidationFromBeforeAFormatChangeIsNotTrusted) {
  // The control service validates an edit, then applies it without a
  // second check (Apply's validated_in): unless the format changed in
  // between, which moves rate-dependent ranges (crossover: 0.49 x rate).
  Rig rig(48000.0, 256);
  rig.Apply(ToneChain());
  auto spec = ToneChain();
  spec.nodes.push_back({"x", "crossover", 1, {{"freqs_hz", std::vector<double>{22000.0}}}});
  uint64_t generation = 0;
  ASSERT_TRUE(rig.engine().Validate(spec, &generation).empty());
  ASSERT_TRUE(rig.engine().SetFormat({44100.0, 256}).ok());
  const uint64_t rev = rig.engine().revision();
  auto r = rig.engine().Apply(spec, std::nullopt, generation);
  ASSERT_FALSE(r.ok()) << "22 kHz is above 0.49 x 44.1 kHz";
  EXPECT_NE(r.status().message().find("freqs_hz"), std::string::npos) << r.status();
  EXPECT_EQ(rig.engine().revision(), rev) << "nothing changed";
  spec.nodes.back().params["freqs_hz"] = std::vector<double>{20000.0};
  ASSERT_TRUE(rig.engine().Validate(spec, &generation).empty());
  r = rig.engine().Apply(spec, std::nullopt, generation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(rig.engine().spec(), spec);
}

TEST(Engine, ALiveChangeIsCheckedAndCommittedWithoutANewPlan) {
  // The fast path of a fader: a spec that differs from the live graph only
  // in live values is checked node by node, with the messages of a whole
  // check, and committed without building a node or compiling a plan.
  Rig rig(48000.0, 256);
  auto spec = ToneChain();
  spec.nodes.push_back({"x", "crossover", 1, {{"freqs_hz", std::vector<double>{20000.0}}}});
  spec.routes.push_back({model::Endpoint::Parse("g"), model::Endpoint::Parse("x")});
  rig.Apply(spec);
  const uint64_t rev = rig.engine().revision();

  auto bad = spec;
  bad.nodes[1].params["gain_db"] = 99.0;
  bad.nodes[0].params["level_db"] = std::string("loud");
  const auto fast = rig.engine().Validate(bad);
  const auto whole = model::ValidateGraph(bad, rig.kinds(), rig.engine().validation_context());
  ASSERT_EQ(fast.size(), 2u) << model::IssuesText(fast);
  EXPECT_EQ(model::IssuesText(fast), model::IssuesText(whole));
  EXPECT_NE(model::IssuesText(fast).find("nodes[1].params.gain_db"), std::string::npos);
  EXPECT_EQ(rig.engine().Apply(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rig.engine().revision(), rev) << "nothing changed";
  for (const double v : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {  // not finite: refused the same way
    auto odd = spec;
    odd.nodes[1].params["gain_db"] = v;
    const auto issues = rig.engine().Validate(odd);
    ASSERT_EQ(issues.size(), 1u) << model::IssuesText(issues);
    EXPECT_EQ(issues[0].path, "nodes[1].params.gain_db");
    EXPECT_EQ(rig.engine().Apply(odd).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(rig.engine().revision(), rev) << "nothing changed";

  auto quiet = spec;
  quiet.nodes[1].params["gain_db"] = -20.0;
  uint64_t generation = 0;
  ASSERT_TRUE(rig.engine().Validate(quiet, &generation).empty());
  auto r = rig.engine().Apply(quiet, std::nullopt, generation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->replanned);
  EXPECT_EQ(r->revision, rev + 1);
  EXPECT_EQ(rig.engine().spec(), quiet);
  auto y = rig.Run({}, 48000);
  EXPECT_NEAR(ToDb(Peak(y[0], 24000)), -26.0, 0.05) << "the tone (-6 dB) at -20 dB of gain";

  // The node keeps its new value through an edit that does build a plan.
  auto rerouted = quiet;
  rerouted.routes.pop_back();
  r = rig.engine().Apply(rerouted);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->replanned);
  y = rig.Run({}, 48000);
  EXPECT_NEAR(ToDb(Peak(y[0], 24000)), -26.0, 0.05);

  // A live value found valid before a format change is checked again.
  auto high = rerouted;
  high.nodes[2].params["freqs_hz"] = std::vector<double>{22000.0};
  ASSERT_TRUE(rig.engine().Validate(high, &generation).empty()) << "below 0.49 x 48 kHz";
  ASSERT_TRUE(rig.engine().SetFormat({44100.0, 256}).ok());
  const uint64_t at = rig.engine().revision();
  r = rig.engine().Apply(high, std::nullopt, generation);
  ASSERT_FALSE(r.ok()) << "22 kHz is above 0.49 x 44.1 kHz";
  EXPECT_NE(r.status().message().find("nodes[2].params.freqs_hz"), std::string::npos) << r.status();
  EXPECT_EQ(rig.engine().revision(), at) << "nothing changed";
}

TEST(Engine, LatencyIsLongestPathThroughDelays) {
  Rig rig;
  rig.Apply(GraphBuilder()
                .Input("in")
                .Node("d1", "delay", 1, {{"delay_ms", 1.0}})
                .Node("d2", "delay", 1, {{"delay_ms", 2.0}})
                .Node("g", "gain", 1)
                .Output("out")
                .Chain({"in", "d1", "d2", "out"})
                .Chain({"in", "g", "out"})
                .Build());
  EXPECT_EQ(rig.engine().LatencyFrames("in", "out"), 144u);
  EXPECT_EQ(rig.engine().OutputLatencyFrames("out"), 144u);
}

TEST(Compile, BiquadChainsAreFusedAndMatchUnfused) {
  auto kinds = dsp::MakeBuiltinRegistry();
  const rt::StreamFormat fmt{48000.0, 128};
  auto make_graph = [&] {
    compile::Graph g;
    compile::Vertex in;
    in.type = compile::Vertex::Type::kInput;
    in.layout.outputs.push_back({"out", 2});
    g.vertices.push_back(in);
    const double freqs[] = {40, 18000, 60, 16000, 80, 14000, 100, 12000};
    for (int i = 0; i < 8; ++i) {
      model::NodeSpec spec{
          "b" + std::to_string(i),
          "biquad",
          2,
          {{"type", std::string(i % 2 ? "lowpass" : "highpass")}, {"freq_hz", freqs[i]}}};
      const auto* kind = kinds->Find("biquad");
      compile::Vertex v;
      v.layout = kind->Layout(spec);
      v.proc = std::shared_ptr<rt::Processor>(
          std::move(*kind->Instantiate(spec, kind->ResolveParams(spec, fmt.sample_rate_hz), fmt)));
      g.vertices.push_back(v);
    }
    compile::Vertex out;
    out.type = compile::Vertex::Type::kOutput;
    out.layout.inputs.push_back({"in", 2});
    g.vertices.push_back(out);
    for (size_t i = 0; i + 1 < g.vertices.size(); ++i) g.edges.push_back({i, 0, i + 1, 0});
    g.input_channels = 2;
    g.output_channels = 2;
    return g;
  };
  auto fused = compile::CompilePlan(make_graph(), fmt, {0, true});
  auto plain = compile::CompilePlan(make_graph(), fmt, {0, false});
  ASSERT_TRUE(fused.ok() && plain.ok());
  EXPECT_EQ((*fused)->fused_cascades(), 1u);
  EXPECT_EQ((*plain)->fused_cascades(), 0u);
  EXPECT_LT((*fused)->step_count(), (*plain)->step_count());
  const Signal x = Sine(3000.0, 0.3, 128), x2 = Sine(50.0, 0.3, 128);
  const float* in[] = {x.data(), x2.data()};
  Signal a0(128), a1(128), b0(128), b1(128);
  float* oa[] = {a0.data(), a1.data()};
  float* ob[] = {b0.data(), b1.data()};
  for (int rep = 0; rep < 20; ++rep) {
    (*fused)->Process(in, oa, 128);
    (*plain)->Process(in, ob, 128);
    for (size_t n = 0; n < 128; ++n) {
      ASSERT_NEAR(a0[n], b0[n], 1e-6);
      ASSERT_NEAR(a1[n], b1[n], 1e-6);
    }
  }
}

// The engine tells its port host of port changes, and only of those: a
// parameter edit never reaches ChangePorts, a refused graph (here one with
// an absurd channel count) is refused before the host is asked, and a port
// change is finished as published.
class RecordingHost final : public engine::PortHost {
 public:
  struct Change final : engine::PortHost::Change {
    explicit Change(RecordingHost& h) : host(h) {}
    void Finish(bool published) override { host.finished.push_back(published); }
    RecordingHost& host;
  };
  absl::StatusOr<std::unique_ptr<engine::PortHost::Change>> ChangePorts(
      const model::GraphSpec& next) override {
    changes.push_back(next.TotalOutputChannels());
    return std::make_unique<Change>(*this);
  }
  void GraphChanged(const model::GraphSpec& current) override {
    graphs.push_back(current.TotalOutputChannels());
  }
  std::vector<int> changes, graphs;
  std::vector<bool> finished;
};

TEST(EnginePortHost, OnlyPortChangesReachTheHostAndBadGraphsNever) {
  Rig rig;
  auto graph = [](int channels, double gain_db) {
    return GraphBuilder()
        .Input("in", channels)
        .Node("g", "gain", channels, {{"gain_db", gain_db}})
        .Output("out", channels)
        .Chain({"in", "g", "out"})
        .Build();
  };
  rig.Apply(graph(1, -6.0));
  RecordingHost host;
  rig.engine().SetPortHost(&host);

  ASSERT_TRUE(rig.engine().SetParameter("g", "gain_db", -3.0).ok());
  EXPECT_TRUE(host.changes.empty()) << "a parameter edit asked for a port change";
  EXPECT_EQ(host.graphs, std::vector<int>{1});

  model::GraphSpec huge = graph(1, -6.0);
  huge.outputs[0].channels = 1 << 30;
  huge.nodes[0].channels = 1 << 30;
  EXPECT_FALSE(rig.engine().Apply(huge).ok());
  EXPECT_TRUE(host.changes.empty()) << "a refused graph reached the host";

  ASSERT_TRUE(rig.engine().Apply(graph(2, -6.0)).ok());
  EXPECT_EQ(host.changes, std::vector<int>{2});
  EXPECT_EQ(host.finished, std::vector<bool>{true});
  EXPECT_EQ(host.graphs, (std::vector<int>{1, 2}));

  rig.engine().ClearPortHost(&host);
  ASSERT_TRUE(rig.engine().Apply(graph(1, -6.0)).ok());
  EXPECT_EQ(host.changes.size(), 1u) << "a cleared host was still called";
}

}  // namespace
}  // namespace aers::test

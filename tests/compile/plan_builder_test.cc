// compile::CompilePlan and its back end PlanBuilder on small graphs: nodes
// run in topological order, a single unramped source is read in place (no
// copy, no mix step), fan-in sums, a cycle is refused, chains of biquads are
// fused into cascades (also past the cascade length limit) and compute what
// the unfused nodes and a hand-written filter compute, and a tiny graph's
// output equals a reference computed by hand.
#include "compile/plan_builder.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "compile/compile.h"
#include "dsp/builtins.h"
#include "gtest/gtest.h"
#include "model/kind.h"
#include "rt/biquad.h"
#include "rt/denormals.h"
#include "rt/plan.h"
#include "rt/thread_role.h"

namespace aers::compile {
namespace {

using rt::Ramp;
using Signal = std::vector<float>;

constexpr double kRate = 48000.0;
constexpr uint32_t kPeriod = 64;
constexpr rt::StreamFormat kFormat{kRate, kPeriod};

// What the nodes below saw when they last ran.
struct Trace {
  std::vector<std::string> order;  // node names in the order they ran
};

// out[c] = k * in[c] over `channels` channels; records that it ran and which
// buffers it was handed.
class Probe final : public rt::Processor {
 public:
  Probe(std::string name, float k, int channels, Trace* trace)
      : name_(std::move(name)), k_(k), channels_(channels), trace_(trace) {}
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    in_.assign(in, in + channels_);
    out_.assign(out, out + channels_);
    for (int c = 0; c < channels_; ++c) {
      for (uint32_t n = 0; n < frames; ++n) out[c][n] = k_ * in[c][n];
    }
    if (trace_ != nullptr) trace_->order.push_back(name_);  // test only: allocates
  }
  const std::vector<const float*>& in() const { return in_; }
  const std::vector<float*>& out() const { return out_; }

 private:
  std::string name_;
  float k_;
  int channels_;
  Trace* trace_;
  std::vector<const float*> in_;
  std::vector<float*> out_;
};

// Two channels in, the same two swapped out.
class Swap final : public rt::Processor {
 public:
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    for (uint32_t n = 0; n < frames; ++n) {
      out[0][n] = in[1][n];
      out[1][n] = in[0][n];
    }
  }
};

// Small graph builder: externals and one-port nodes.
class G {
 public:
  size_t Input(int channels, uint32_t first_channel) {
    Vertex v;
    v.type = Vertex::Type::kInput;
    v.name = "in" + std::to_string(graph_.vertices.size());
    v.layout.outputs.push_back({"out", channels});
    v.first_channel = first_channel;
    graph_.input_channels =
        std::max(graph_.input_channels, first_channel + static_cast<uint32_t>(channels));
    return Add(std::move(v));
  }
  size_t Output(int channels, uint32_t first_channel) {
    Vertex v;
    v.type = Vertex::Type::kOutput;
    v.name = "out" + std::to_string(graph_.vertices.size());
    v.layout.inputs.push_back({"in", channels});
    v.first_channel = first_channel;
    graph_.output_channels =
        std::max(graph_.output_channels, first_channel + static_cast<uint32_t>(channels));
    return Add(std::move(v));
  }
  size_t Node(std::shared_ptr<rt::Processor> proc, int channels = 1) {
    Vertex v;
    v.name = "n" + std::to_string(graph_.vertices.size());
    v.layout.inputs.push_back({"in", channels});
    v.layout.outputs.push_back({"out", channels});
    v.proc = std::move(proc);
    return Add(std::move(v));
  }
  G& Edge(size_t from, size_t to, Ramp ramp = Ramp::kNone) {
    graph_.edges.push_back({from, 0, to, 0, ramp});
    return *this;
  }
  G& Chain(const std::vector<size_t>& vs) {
    for (size_t i = 0; i + 1 < vs.size(); ++i) Edge(vs[i], vs[i + 1]);
    return *this;
  }
  const Graph& graph() const { return graph_; }
  Graph& graph() { return graph_; }

  std::unique_ptr<rt::Plan> Compile(uint32_t ramp_frames = 0, bool fuse = true) const {
    CompileOptions o;
    o.ramp_frames = ramp_frames;
    o.fuse_biquads = fuse;
    auto plan = CompilePlan(graph_, kFormat, o);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? std::move(*plan) : nullptr;
  }

 private:
  size_t Add(Vertex v) {
    graph_.vertices.push_back(std::move(v));
    return graph_.vertices.size() - 1;
  }
  Graph graph_;
};

// Runs `plan` over `inputs` (one signal per external input channel) in
// periods of kPeriod, as the audio thread; one signal per output channel.
std::vector<Signal> RunPlan(rt::Plan& plan, const std::vector<Signal>& inputs, size_t frames) {
  std::vector<Signal> out(plan.output_channels(), Signal(frames));
  std::vector<Signal> ob(plan.output_channels(), Signal(kPeriod, 9.0f));
  std::vector<const float*> ip(plan.input_channels());
  std::vector<float*> op(plan.output_channels());
  for (size_t c = 0; c < ob.size(); ++c) op[c] = ob[c].data();
  rt::ScopedFlushToZero ftz;
  for (size_t done = 0; done < frames; done += kPeriod) {
    const auto n = static_cast<uint32_t>(std::min<size_t>(kPeriod, frames - done));
    for (size_t c = 0; c < ip.size(); ++c) ip[c] = inputs[c].data() + done;
    {
      rt::AudioThreadScope audio;
      plan.Process(ip.data(), op.data(), n);
    }
    for (size_t c = 0; c < ob.size(); ++c) std::copy_n(ob[c].begin(), n, out[c].begin() + done);
  }
  return out;
}

// A 2.3 kHz sine: distinct samples, and well inside every filter's pass band below.
Signal Tone(size_t frames, float scale = 1.0f) {
  Signal s(frames);
  for (size_t n = 0; n < frames; ++n) s[n] = scale * std::sin(0.3f * static_cast<float>(n) + 0.3f);
  return s;
}

// --- order -----------------------------------------------------------------

TEST(TopologicalOrder, SourcesComeFirstAndTiesKeepVertexOrder) {
  G g;
  const size_t out = g.Output(1, 0);  // 0
  const size_t b = g.Node(nullptr);   // 1
  const size_t in = g.Input(1, 0);    // 2
  const size_t a = g.Node(nullptr);   // 3
  const size_t c = g.Node(nullptr);   // 4, parallel to a
  g.Chain({in, a, b, out}).Edge(in, c).Edge(c, out);
  const auto order = TopologicalOrder(g.graph());
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(*order, (std::vector<size_t>{in, a, b, c, out}));
}

TEST(TopologicalOrder, ACycleHasNoOrderAndIsNotCompiled) {
  G g;
  const size_t in = g.Input(1, 0);
  const size_t a = g.Node(std::make_shared<Probe>("a", 1.0f, 1, nullptr));
  const size_t b = g.Node(std::make_shared<Probe>("b", 1.0f, 1, nullptr));
  const size_t out = g.Output(1, 0);
  g.Chain({in, a, b, out}).Edge(b, a);  // a -> b -> a
  EXPECT_FALSE(TopologicalOrder(g.graph()).has_value());
  auto plan = CompilePlan(g.graph(), kFormat, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(plan.status())) << plan.status();
  // A self-loop too.
  G h;
  const size_t x = h.Node(std::make_shared<Probe>("x", 1.0f, 1, nullptr));
  h.Edge(x, x);
  EXPECT_FALSE(TopologicalOrder(h.graph()).has_value());
  EXPECT_FALSE(CompilePlan(h.graph(), kFormat, {}).ok());
}

TEST(CompilePlan, NodesRunInTopologicalOrderWhateverTheVertexOrder) {
  Trace trace;
  G g;
  const size_t out = g.Output(1, 0);
  const size_t c = g.Node(std::make_shared<Probe>("c", 1.0f, 1, &trace));
  const size_t b = g.Node(std::make_shared<Probe>("b", 1.0f, 1, &trace));
  const size_t a = g.Node(std::make_shared<Probe>("a", 1.0f, 1, &trace));
  const size_t in = g.Input(1, 0);
  g.Chain({in, a, b, c, out});
  auto plan = g.Compile();
  ASSERT_NE(plan, nullptr);
  const Signal x = Tone(kPeriod);
  RunPlan(*plan, {x}, kPeriod);
  EXPECT_EQ(trace.order, (std::vector<std::string>{"a", "b", "c"}));
}

// --- buffers -----------------------------------------------------------------

// A chain reads each node's output in place: no mix step, the next node's
// input pointer is the previous node's output pointer. Fan-out shares one
// buffer; unconnected inputs share the silence buffer.
TEST(CompilePlan, SingleSourcesAreReadInPlaceAndBuffersAreDistinct) {
  auto a = std::make_shared<Probe>("a", 2.0f, 1, nullptr);
  auto b = std::make_shared<Probe>("b", 3.0f, 1, nullptr);
  auto c = std::make_shared<Probe>("c", 5.0f, 1, nullptr);
  auto idle1 = std::make_shared<Probe>("idle1", 1.0f, 1, nullptr);
  auto idle2 = std::make_shared<Probe>("idle2", 1.0f, 1, nullptr);
  G g;
  const size_t in = g.Input(1, 0);
  const size_t na = g.Node(a), nb = g.Node(b), nc = g.Node(c);
  const size_t ni1 = g.Node(idle1), ni2 = g.Node(idle2);
  const size_t out = g.Output(1, 0);
  g.Chain({in, na, nb, out}).Edge(na, nc);  // a feeds b and c
  (void)ni1;
  (void)ni2;
  auto plan = g.Compile();
  ASSERT_NE(plan, nullptr);
  // 5 nodes + 1 output channel; no kMix step for any single unramped source.
  EXPECT_EQ(plan->step_count(), 6u);

  const Signal x = Tone(kPeriod);
  const auto y = RunPlan(*plan, {x}, kPeriod);
  EXPECT_EQ(b->in()[0], a->out()[0]) << "b reads a copy of a's output";
  EXPECT_EQ(c->in()[0], a->out()[0]) << "fan-out copies a's output";
  EXPECT_NE(static_cast<const float*>(a->out()[0]), a->in()[0]);
  EXPECT_NE(a->in()[0], x.data()) << "the plan reads the caller's input buffer directly";
  EXPECT_EQ(idle1->in()[0], idle2->in()[0]) << "unconnected inputs share the silence buffer";
  for (uint32_t n = 0; n < kPeriod; ++n) ASSERT_EQ(idle1->in()[0][n], 0.0f);
  // Every output is a buffer of its own, none of them an input or silence.
  std::set<const float*> outs;
  for (const auto* p : {a.get(), b.get(), c.get(), idle1.get(), idle2.get()}) {
    outs.insert(p->out()[0]);
  }
  EXPECT_EQ(outs.size(), 5u);
  EXPECT_FALSE(outs.count(a->in()[0]));
  EXPECT_FALSE(outs.count(idle1->in()[0]));
  for (uint32_t n = 0; n < kPeriod; ++n) ASSERT_FLOAT_EQ(y[0][n], 6.0f * x[n]);
}

// Fan-in into a node goes through one mix step; fan-in at an output is
// summed by the output step itself.
TEST(CompilePlan, FanInSums) {
  auto sum = std::make_shared<Probe>("sum", 1.0f, 1, nullptr);
  G g;
  const size_t in0 = g.Input(1, 0);
  const size_t in1 = g.Input(1, 1);
  const size_t a = g.Node(std::make_shared<Probe>("a", 0.5f, 1, nullptr));
  const size_t b = g.Node(std::make_shared<Probe>("b", -0.25f, 1, nullptr));
  const size_t s = g.Node(sum);
  const size_t out0 = g.Output(1, 0);
  const size_t out1 = g.Output(1, 1);
  g.Edge(in0, a).Edge(in1, b).Edge(a, s).Edge(b, s).Edge(in0, s).Edge(s, out0);
  g.Edge(a, out1).Edge(b, out1);
  auto plan = g.Compile();
  ASSERT_NE(plan, nullptr);
  // a, b, mix into sum, sum, out0, out1.
  EXPECT_EQ(plan->step_count(), 6u);
  const Signal x0 = Tone(3 * kPeriod, 0.8f), x1 = Tone(3 * kPeriod, -0.6f);
  const auto y = RunPlan(*plan, {x0, x1}, 3 * kPeriod);
  for (size_t n = 0; n < x0.size(); ++n) {
    ASSERT_FLOAT_EQ(y[0][n], 0.5f * x0[n] - 0.25f * x1[n] + x0[n]) << n;
    ASSERT_FLOAT_EQ(y[1][n], 0.5f * x0[n] - 0.25f * x1[n]) << n;
  }
  for (const float* p : {x0.data(), x1.data()}) EXPECT_NE(sum->in()[0], p);
}

// Channels land where the externals' first_channel says, through
// multi-channel nodes, and an output nobody feeds is silent.
TEST(CompilePlan, ChannelsMapThroughMultiChannelNodes) {
  G g;
  const size_t in = g.Input(2, 0);
  const size_t sw = g.Node(std::make_shared<Swap>(), 2);
  const size_t out = g.Output(2, 1);  // backend channels 1 and 2
  g.Output(1, 0);                     // channel 0: unconnected
  g.Chain({in, sw, out});
  auto plan = g.Compile();
  ASSERT_NE(plan, nullptr);
  ASSERT_EQ(plan->input_channels(), 2u);
  ASSERT_EQ(plan->output_channels(), 3u);
  const Signal l = Tone(kPeriod, 0.5f), r = Tone(kPeriod, -0.25f);
  const auto y = RunPlan(*plan, {l, r}, kPeriod);
  for (uint32_t n = 0; n < kPeriod; ++n) {
    ASSERT_EQ(y[0][n], 0.0f) << n;
    ASSERT_EQ(y[1][n], r[n]) << n;
    ASSERT_EQ(y[2][n], l[n]) << n;
  }
}

// --- a tiny graph against a reference computed by hand ----------------------

// in -> a (x0.5) -> out, with a new route in -> b (x2) fading in and the old
// route a -> out fading out over 100 frames:
//   y[n] = 0.5 x[n] (1 - g[n]) + 2 x[n] g[n],  g[n] = min(1, (n + 1) / 100).
TEST(CompilePlan, ATinyCrossfadeGraphMatchesAHandComputedReference) {
  constexpr uint32_t kRamp = 100;
  G g;
  const size_t in = g.Input(1, 0);
  const size_t a = g.Node(std::make_shared<Probe>("a", 0.5f, 1, nullptr));
  const size_t b = g.Node(std::make_shared<Probe>("b", 2.0f, 1, nullptr));
  const size_t out = g.Output(1, 0);
  g.Edge(in, a).Edge(a, out, Ramp::kOut).Edge(in, b, Ramp::kIn).Edge(b, out);
  auto plan = g.Compile(kRamp);
  ASSERT_NE(plan, nullptr);
  const size_t frames = 4 * kPeriod;
  const Signal x = Tone(frames);
  const auto y = RunPlan(*plan, {x}, frames);
  for (size_t n = 0; n < frames; ++n) {
    const double gn = std::min(1.0, static_cast<double>(n + 1) / kRamp);
    const double xn = x[n];
    const double want = 0.5 * xn * (1.0 - gn) + 2.0 * xn * gn;
    ASSERT_NEAR(y[0][n], want, 1e-5) << "frame " << n;
  }
  EXPECT_TRUE(plan->RampDone());
}

// --- biquad fusion -------------------------------------------------------------

rt::BiquadParams Stage(int k) {
  rt::BiquadParams p;
  p.type = k % 2 == 0 ? rt::BiquadType::kHighpass : rt::BiquadType::kLowpass;
  p.freq_hz = k % 2 == 0 ? 40.0 + 20.0 * k : 18000.0 - 300.0 * k;  // 40..800, 18000..7200 Hz
  p.q = 0.7071;
  return p;
}

// A real biquad node (dsp/biquad.cc) set to Stage(k).
std::shared_ptr<rt::Processor> Biquad(const model::KindRegistry& kinds, int k, int channels) {
  const model::NodeKind* kind = kinds.Find("biquad");
  EXPECT_NE(kind, nullptr);
  const rt::BiquadParams p = Stage(k);
  model::NodeSpec spec{
      "bq" + std::to_string(k),
      "biquad",
      channels,
      {{"type", std::string(p.type == rt::BiquadType::kLowpass ? "lowpass" : "highpass")},
       {"freq_hz", p.freq_hz},
       {"q", p.q}}};
  auto proc = kind->Instantiate(spec, kind->ResolveParams(spec, kRate), kFormat);
  EXPECT_TRUE(proc.ok()) << proc.status();
  EXPECT_NE((*proc)->AsBiquad(), nullptr);
  return std::shared_ptr<rt::Processor>(std::move(*proc));
}

// Stages 0..count-1 in series, written out: double TDF-II per stage,
// rounded to float between stages as separate nodes would.
Signal ReferenceChain(const Signal& x, int count) {
  Signal y = x;
  for (int k = 0; k < count; ++k) {
    const rt::BiquadCoeffs c = rt::DesignBiquad(Stage(k), kRate);
    double s1 = 0.0, s2 = 0.0;
    for (float& v : y) {
      const double in = v;
      const double out = c.b0 * in + s1;
      s1 = c.b1 * in - c.a1 * out + s2;
      s2 = c.b2 * in - c.a2 * out;
      v = static_cast<float>(out);
    }
  }
  return y;
}

struct BiquadChain {
  G g;
  std::vector<size_t> nodes;
};

// in -> bq0 -> ... -> bq(count-1) -> out, stereo.
BiquadChain MakeChain(const model::KindRegistry& kinds, int count) {
  BiquadChain c;
  std::vector<size_t> chain{c.g.Input(2, 0)};
  for (int k = 0; k < count; ++k) {
    c.nodes.push_back(c.g.Node(Biquad(kinds, k, 2), 2));
    chain.push_back(c.nodes.back());
  }
  chain.push_back(c.g.Output(2, 0));
  c.g.Chain(chain);
  return c;
}

double MaxDiff(const Signal& a, const Signal& b) {
  double d = 0.0;
  for (size_t n = 0; n < a.size(); ++n) d = std::max(d, std::fabs(double{a[n]} - double{b[n]}));
  return d;
}

TEST(CompilePlan, ABiquadChainIsFusedAndComputesTheSameAsUnfusedNodes) {
  const auto kinds = dsp::MakeBuiltinRegistry();
  constexpr int kStages = 6;
  auto fused = MakeChain(*kinds, kStages).g.Compile(0, true);
  auto plain = MakeChain(*kinds, kStages).g.Compile(0, false);
  ASSERT_NE(fused, nullptr);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(fused->fused_cascades(), 1u);
  EXPECT_EQ(fused->step_count(), 1u + 2u);  // one cascade, two output channels
  EXPECT_EQ(plain->fused_cascades(), 0u);
  EXPECT_EQ(plain->step_count(), static_cast<size_t>(kStages) + 2u);

  const size_t frames = 4800;
  const Signal l = Tone(frames, 0.7f), r = Tone(frames, -0.3f);
  const auto yf = RunPlan(*fused, {l, r}, frames);
  const auto yp = RunPlan(*plain, {l, r}, frames);
  const Signal rl = ReferenceChain(l, kStages), rr = ReferenceChain(r, kStages);
  EXPECT_LE(MaxDiff(yf[0], rl), 1e-5);
  EXPECT_LE(MaxDiff(yf[1], rr), 1e-5);
  EXPECT_LE(MaxDiff(yp[0], rl), 1e-5);
  EXPECT_LE(MaxDiff(yp[1], rr), 1e-5);
  double peak = 0.0;
  for (float v : rl) peak = std::max(peak, std::fabs(double{v}));
  EXPECT_GT(peak, 0.05) << "the reference is (near) silent: the comparison proves nothing";
}

// Longer than rt::kMaxCascade: split into cascades of at most that length,
// and still the same output.
TEST(CompilePlan, AChainLongerThanTheCascadeLimitIsSplit) {
  const auto kinds = dsp::MakeBuiltinRegistry();
  const int stages = rt::kMaxCascade + 5;
  auto plan = MakeChain(*kinds, stages).g.Compile();
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->fused_cascades(), 2u);
  EXPECT_EQ(plan->step_count(), 2u + 2u);
  const size_t frames = 2400;
  const Signal l = Tone(frames, 0.7f), r = Tone(frames, -0.3f);
  const auto y = RunPlan(*plan, {l, r}, frames);
  EXPECT_LE(MaxDiff(y[0], ReferenceChain(l, stages)), 1e-5);
  EXPECT_LE(MaxDiff(y[1], ReferenceChain(r, stages)), 1e-5);
}

// A biquad whose output is needed elsewhere, or that is fed through a
// ramped route, ends a fused chain; a non-biquad node is never fused.
TEST(CompilePlan, FusionStopsWhereTheIntermediateSignalIsNeeded) {
  const auto kinds = dsp::MakeBuiltinRegistry();
  {
    // in -> bq0 -> bq1 -> bq2 -> out, and bq0 -> out as well.
    auto c = MakeChain(*kinds, 3);
    c.g.Edge(c.nodes[0], c.g.graph().vertices.size() - 1);
    auto plan = c.g.Compile();
    ASSERT_NE(plan, nullptr);
    EXPECT_EQ(plan->fused_cascades(), 1u);        // bq1 + bq2
    EXPECT_EQ(plan->step_count(), 1u + 1u + 2u);  // bq0 node, cascade, outputs
  }
  {
    // in -> bq0 -> bq1 with the route into bq1 ramping: nothing to fuse.
    G g;
    const size_t in = g.Input(2, 0);
    const size_t b0 = g.Node(Biquad(*kinds, 0, 2), 2);
    const size_t b1 = g.Node(Biquad(*kinds, 1, 2), 2);
    const size_t out = g.Output(2, 0);
    g.Edge(in, b0).Edge(b0, b1, Ramp::kIn).Edge(b1, out);
    auto plan = g.Compile(32);
    ASSERT_NE(plan, nullptr);
    EXPECT_EQ(plan->fused_cascades(), 0u);
  }
  {
    // bq0 -> gain-like node -> bq1: no chain of two biquads.
    G g;
    const size_t in = g.Input(2, 0);
    const size_t b0 = g.Node(Biquad(*kinds, 0, 2), 2);
    const size_t p = g.Node(std::make_shared<Probe>("p", 1.0f, 2, nullptr), 2);
    const size_t b1 = g.Node(Biquad(*kinds, 1, 2), 2);
    const size_t out = g.Output(2, 0);
    g.Chain({in, b0, p, b1, out});
    auto plan = g.Compile();
    ASSERT_NE(plan, nullptr);
    EXPECT_EQ(plan->fused_cascades(), 0u);
    EXPECT_EQ(plan->step_count(), 3u + 2u);
  }
}

// --- PlanBuilder directly ---------------------------------------------------------

// The builder's own contract: a fresh buffer reads as zero, AddMix sums its
// sources, AddOutput with no source is silence.
TEST(PlanBuilder, MixAndOutputStepsDoWhatTheySay) {
  PlanBuilder b(kFormat, 2, 3, 0);
  const auto sum = b.NewBuffer();
  const auto unused = b.NewBuffer();
  EXPECT_NE(sum, unused);
  EXPECT_NE(b.InputBuffer(0), b.InputBuffer(1));
  EXPECT_NE(b.InputBuffer(0), b.SilenceBuffer());
  b.AddMix(sum, {{b.InputBuffer(0), Ramp::kNone}, {b.InputBuffer(1), Ramp::kNone}});
  b.AddOutput(0, {{sum, Ramp::kNone}});
  b.AddOutput(1, {});
  b.AddOutput(2, {{unused, Ramp::kNone}, {b.SilenceBuffer(), Ramp::kNone}});
  auto plan = b.Finish();
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->step_count(), 4u);
  EXPECT_EQ(plan->input_channels(), 2u);
  EXPECT_EQ(plan->output_channels(), 3u);
  const Signal x0 = Tone(kPeriod, 0.5f), x1 = Tone(kPeriod, 0.25f);
  const auto y = RunPlan(*plan, {x0, x1}, kPeriod);
  for (uint32_t n = 0; n < kPeriod; ++n) {
    ASSERT_FLOAT_EQ(y[0][n], x0[n] + x1[n]) << n;
    ASSERT_EQ(y[1][n], 0.0f) << n;
    ASSERT_EQ(y[2][n], 0.0f) << n;
  }
}

}  // namespace
}  // namespace aers::compile

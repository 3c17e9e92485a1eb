// rt::Runner with plans compiled by hand (compile::CompilePlan on a one-node
// graph): a published plan is adopted at the start of the next period, a
// crossfade plan hands over to its successor once its ramp has run, retired
// plans come back through the retire ring, a full retire ring defers swaps
// (counted) instead of losing plans or blocking, and periods without a
// usable plan are silent and counted.
//
// Every plan here is in -> Scale(k) -> out, so with an input of 1.0 a
// period's output tells which plan ran it.
#include "rt/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "compile/compile.h"
#include "gtest/gtest.h"
#include "rt/plan.h"
#include "rt/thread_role.h"

namespace aers::rt {
namespace {

constexpr uint32_t kPeriod = 64;
constexpr StreamFormat kFormat{48000.0, kPeriod};

// out = k * in, one channel.
class Scale final : public Processor {
 public:
  explicit Scale(float k) : k_(k) {}
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override {
    for (uint32_t n = 0; n < frames; ++n) out[0][n] = k_ * in[0][n];
  }

 private:
  float k_;
};

// in -> Scale(k) -> out; the route into the node ramps as `ramp` over
// `ramp_frames` (a crossfade plan), or not at all.
std::unique_ptr<Plan> MakePlan(float k, uint64_t seq, uint32_t ramp_frames = 0,
                               Ramp ramp = Ramp::kNone) {
  using compile::Vertex;
  compile::Graph g;
  Vertex in;
  in.type = Vertex::Type::kInput;
  in.name = "in";
  in.layout.outputs.push_back({"out", 1});
  Vertex node;
  node.name = "scale";
  node.layout.inputs.push_back({"in", 1});
  node.layout.outputs.push_back({"out", 1});
  node.proc = std::make_shared<Scale>(k);
  Vertex out;
  out.type = Vertex::Type::kOutput;
  out.name = "out";
  out.layout.inputs.push_back({"in", 1});
  g.vertices = {in, node, out};
  g.edges.push_back({0, 0, 1, 0, ramp});
  g.edges.push_back({1, 0, 2, 0, Ramp::kNone});
  g.input_channels = 1;
  g.output_channels = 1;
  compile::CompileOptions o;
  o.ramp_frames = ramp_frames;
  auto plan = compile::CompilePlan(g, kFormat, o);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return nullptr;
  (*plan)->seq = seq;
  (*plan)->io_layout = 1;
  return std::move(*plan);
}

// One period of `frames` frames with every input sample 1.0, run as the
// audio thread. The output buffer starts as garbage (7.0) so silence is
// something Process() wrote.
std::vector<float> Period(Runner& runner, uint32_t frames = kPeriod, uint32_t in_channels = 1,
                          uint32_t out_channels = 1) {
  std::vector<float> in(frames, 1.0f);
  std::vector<std::vector<float>> out(out_channels, std::vector<float>(frames, 7.0f));
  std::vector<const float*> ip(in_channels, in.data());
  std::vector<float*> op(out_channels);
  for (uint32_t c = 0; c < out_channels; ++c) op[c] = out[c].data();
  AudioThreadScope audio;
  runner.Process(ip.data(), in_channels, op.data(), out_channels, frames);
  return out.empty() ? std::vector<float>() : out[0];
}

bool All(const std::vector<float>& v, float x) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [x](float s) { return s == x; });
}

// Takes every plan back from a runner (the owner's duty before destroying
// it) and returns them, so a test can check none was lost or duplicated.
std::vector<Plan*> TakeAll(Runner& runner) {
  std::vector<Plan*> plans;
  if (Plan* p = runner.Publish(nullptr)) plans.push_back(p);
  if (Plan* p = runner.DetachCurrent()) plans.push_back(p);
  while (Plan* p = runner.PopRetired()) plans.push_back(p);
  return plans;
}

void DeleteAll(const std::vector<Plan*>& plans) {
  for (Plan* p : plans) delete p;
}

TEST(Runner, WithoutAPlanPeriodsAreSilentAndCounted) {
  Runner runner;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(All(Period(runner), 0.0f)) << "period " << i;
  EXPECT_EQ(runner.cycles(), 3u);
  EXPECT_EQ(runner.silent_cycles(), 3u);
  EXPECT_EQ(runner.settled_seq(), 0u);
  EXPECT_EQ(runner.PopRetired(), nullptr);
  EXPECT_EQ(runner.DetachCurrent(), nullptr);
}

TEST(Runner, APeriodThePlanCannotRunIsSilentAndCounted) {
  Runner runner;
  ASSERT_EQ(runner.Publish(MakePlan(0.5f, 1).release()), nullptr);
  EXPECT_TRUE(All(Period(runner), 0.5f));
  EXPECT_EQ(runner.silent_cycles(), 0u);
  // Longer than the plan's period, or channel counts the plan was not
  // compiled for: silence, counted, and the plan stays.
  EXPECT_TRUE(All(Period(runner, kPeriod + 1), 0.0f));
  EXPECT_TRUE(All(Period(runner, kPeriod, 1, 2), 0.0f));
  EXPECT_TRUE(All(Period(runner, kPeriod, 2, 1), 0.0f));
  EXPECT_EQ(runner.silent_cycles(), 3u);
  EXPECT_EQ(runner.cycles(), 4u);
  EXPECT_TRUE(All(Period(runner, kPeriod / 2), 0.5f)) << "a shorter period is fine";
  EXPECT_EQ(runner.silent_cycles(), 3u);
  DeleteAll(TakeAll(runner));
}

TEST(Runner, APublishedPlanIsAdoptedAtTheNextPeriod) {
  Runner runner;
  auto a = MakePlan(0.5f, 1);
  Plan* const pa = a.get();
  ASSERT_EQ(runner.Publish(a.release()), nullptr);
  EXPECT_EQ(runner.cycles(), 0u) << "publishing ran a period";
  EXPECT_EQ(runner.settled_seq(), 0u) << "adopted before any period ran";
  EXPECT_TRUE(All(Period(runner), 0.5f));
  EXPECT_EQ(runner.settled_seq(), 1u);
  EXPECT_EQ(runner.PopRetired(), nullptr) << "nothing was replaced yet";

  auto b = MakePlan(0.25f, 2);
  Plan* const pb = b.get();
  ASSERT_EQ(runner.Publish(b.release()), nullptr);
  // Until the next period starts, the old plan is in use and nothing retires.
  EXPECT_EQ(runner.PopRetired(), nullptr);
  EXPECT_EQ(runner.settled_seq(), 1u);
  EXPECT_TRUE(All(Period(runner), 0.25f)) << "the whole period runs the new plan";
  EXPECT_EQ(runner.settled_seq(), 2u);
  EXPECT_EQ(runner.PopRetired(), pa) << "the replaced plan comes back through the retire ring";
  EXPECT_EQ(runner.PopRetired(), nullptr);
  EXPECT_EQ(runner.silent_cycles(), 0u);
  EXPECT_EQ(runner.deferred_swaps(), 0u);
  delete pa;
  EXPECT_EQ(runner.DetachCurrent(), pb);
  delete pb;
}

TEST(Runner, APlanPublishedOverAnUntakenOneHandsTheUntakenOneBack) {
  Runner runner;
  auto a = MakePlan(0.5f, 1);
  Plan* const pa = a.get();
  ASSERT_EQ(runner.Publish(a.release()), nullptr);
  Plan* replaced = runner.Publish(MakePlan(0.25f, 2).release());
  EXPECT_EQ(replaced, pa) << "the plan the audio thread never took goes back to the publisher";
  delete replaced;
  EXPECT_TRUE(All(Period(runner), 0.25f));
  EXPECT_EQ(runner.PopRetired(), nullptr) << "a plan that never ran is not retired";
  DeleteAll(TakeAll(runner));
}

// A crossfade plan X (its new route fading in over 2.5 periods) carrying the
// clean plan S: X runs until its ramp is done, then S takes over at the
// start of the next period and X retires (without S, which it released).
TEST(Runner, ACrossfadePlanHandsOverToItsSuccessorAfterTheFade) {
  constexpr uint32_t kRamp = 160;  // 2.5 periods
  Runner runner;
  ASSERT_EQ(runner.Publish(MakePlan(1.0f, 1).release()), nullptr);
  ASSERT_TRUE(All(Period(runner), 1.0f));
  ASSERT_EQ(runner.settled_seq(), 1u);

  auto x = MakePlan(0.5f, 2, kRamp, Ramp::kIn);
  auto s = MakePlan(0.75f, 3);  // a different level, to see the hand-over
  Plan* const px = x.get();
  Plan* const ps = s.get();
  x->successor = std::move(s);
  ASSERT_EQ(runner.Publish(x.release()), nullptr);

  // Fading: 0.5 * (n + 1) / kRamp across the periods, continuous.
  std::vector<float> fade;
  for (int p = 0; p < 3; ++p) {
    const auto out = Period(runner);
    fade.insert(fade.end(), out.begin(), out.end());
    if (p < 2) {
      EXPECT_EQ(runner.settled_seq(), 1u) << "settled before the fade ended (period " << p << ")";
    }
  }
  for (uint32_t n = 0; n < 3 * kPeriod; ++n) {
    const float g = std::min(1.0f, static_cast<float>(n + 1) / static_cast<float>(kRamp));
    ASSERT_NEAR(fade[n], 0.5f * g, 1e-6f) << "frame " << n;
  }
  // The third period finished the ramp: X is settled, still current.
  EXPECT_EQ(runner.settled_seq(), 2u);
  Plan* const old = runner.PopRetired();
  ASSERT_NE(old, nullptr) << "the plan before the crossfade did not retire";
  delete old;
  EXPECT_EQ(runner.PopRetired(), nullptr);

  // Next period: the successor runs it, X retires without its successor.
  EXPECT_TRUE(All(Period(runner), 0.75f));
  EXPECT_EQ(runner.settled_seq(), 3u);
  EXPECT_EQ(runner.PopRetired(), px);
  EXPECT_EQ(px->successor, nullptr) << "the retired crossfade plan still owns its successor";
  delete px;
  EXPECT_EQ(runner.DetachCurrent(), ps);
  delete ps;
  EXPECT_EQ(runner.silent_cycles(), 0u);
}

// A fade is never cut: a plan published "after the fade" while a crossfade
// runs waits for its end; a fresh plan (new format, new ports) is taken at
// once, cutting it.
TEST(Runner, APlanPublishedAfterTheFadeWaitsForTheRunningFade) {
  constexpr uint32_t kRamp = 160;  // 2.5 periods
  for (const bool after_fade : {true, false}) {
    SCOPED_TRACE(after_fade ? "after the fade" : "fresh");
    Runner runner;
    ASSERT_EQ(runner.Publish(MakePlan(1.0f, 1).release()), nullptr);
    ASSERT_TRUE(All(Period(runner), 1.0f));
    auto x = MakePlan(0.5f, 2, kRamp, Ramp::kIn);
    x->successor = MakePlan(0.5f, 2);
    ASSERT_EQ(runner.Publish(x.release()), nullptr);
    Period(runner);  // the fade runs: 64 of 160 frames
    ASSERT_EQ(runner.settled_seq(), 1u);
    ASSERT_EQ(runner.Publish(MakePlan(0.25f, 3).release(), after_fade), nullptr);
    if (after_fade) {
      EXPECT_TRUE(runner.has_pending());
      const auto second = Period(runner);  // frames 64..127 of the fade
      EXPECT_NEAR(second.back(), 0.5f * 128.0f / kRamp, 1e-6f);
      EXPECT_TRUE(runner.has_pending()) << "taken before the fade ended";
      Period(runner);  // the fade ends in this period
      EXPECT_EQ(runner.settled_seq(), 2u);
      EXPECT_TRUE(All(Period(runner), 0.25f));  // then the waiting plan
    } else {
      EXPECT_TRUE(All(Period(runner), 0.25f));
    }
    EXPECT_FALSE(runner.has_pending());
    EXPECT_EQ(runner.settled_seq(), 3u);
    DeleteAll(TakeAll(runner));
  }
}

// The audio thread never waits and never drops a plan: with the retire ring
// full, a published plan waits (counted per period in deferred_swaps) while
// the current plan keeps running; one reclaimed slot lets it in.
TEST(Runner, AFullRetireRingDefersSwapsWithoutLosingPlans) {
  Runner runner;
  std::set<Plan*> published;
  uint64_t seq = 0;
  auto publish = [&](float k) {
    auto p = MakePlan(k, ++seq);
    published.insert(p.get());
    EXPECT_EQ(runner.Publish(p.release()), nullptr);
  };
  // Swap plans without reclaiming until a swap is deferred: that many
  // retired plans fill the ring.
  size_t retired = 0;
  publish(1.0f);
  Period(runner);
  for (;;) {
    publish(static_cast<float>(seq + 1));
    const auto out = Period(runner);
    if (runner.deferred_swaps() > 0) {
      // Deferred: the previous plan ran this period, not the new one.
      EXPECT_TRUE(All(out, static_cast<float>(seq - 1)));
      break;
    }
    EXPECT_TRUE(All(out, static_cast<float>(seq)));
    ++retired;
    ASSERT_LT(retired, 100000u) << "the retire ring never filled";
  }
  EXPECT_GE(retired, 2u);
  EXPECT_EQ(retired & (retired - 1), 0u) << "ring capacity " << retired << " not a power of two";
  const uint64_t silent = runner.silent_cycles();

  // However long the housekeeping thread is away: each period returns, runs
  // the current plan and counts one deferred swap.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(All(Period(runner), static_cast<float>(seq - 1))) << "period " << i;
  }
  EXPECT_EQ(runner.deferred_swaps(), 1001u);
  EXPECT_EQ(runner.silent_cycles(), silent) << "a deferred swap must not cost audio";
  EXPECT_EQ(runner.settled_seq(), seq - 1);

  // One slot reclaimed: the waiting plan is adopted at the next period.
  Plan* first = runner.PopRetired();
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(All(Period(runner), static_cast<float>(seq)));
  EXPECT_EQ(runner.settled_seq(), seq);
  EXPECT_EQ(runner.deferred_swaps(), 1001u);

  // Every plan comes back exactly once.
  std::vector<Plan*> back = TakeAll(runner);
  back.push_back(first);
  EXPECT_EQ(back.size(), published.size());
  EXPECT_EQ(std::set<Plan*>(back.begin(), back.end()), published);
  DeleteAll(back);
}

// A finished crossfade whose successor cannot retire the crossfade plan (ring
// full) keeps running the crossfade plan at full level; the successor takes
// over once a slot is free.
TEST(Runner, ASuccessorWaitsForRoomInTheRetireRing) {
  Runner runner;
  std::vector<Plan*> reclaimed;
  uint64_t seq = 0;
  ASSERT_EQ(runner.Publish(MakePlan(1.0f, ++seq).release()), nullptr);
  Period(runner);
  // Fill the ring.
  while (runner.deferred_swaps() == 0) {
    ASSERT_EQ(runner.Publish(MakePlan(1.0f, ++seq).release()), nullptr);
    Period(runner);
    ASSERT_LT(seq, 100000u);
  }
  // Drop the deferred plan and make room for exactly one swap.
  delete runner.Publish(nullptr);
  reclaimed.push_back(runner.PopRetired());
  ASSERT_NE(reclaimed.back(), nullptr);

  auto x = MakePlan(0.5f, ++seq, kPeriod, Ramp::kIn);
  Plan* const px = x.get();
  x->successor = MakePlan(0.75f, seq + 1);
  Plan* const ps = x->successor.get();
  ASSERT_EQ(runner.Publish(x.release()), nullptr);
  Period(runner);  // X adopted (the ring is full again), its one-period ramp done
  EXPECT_EQ(runner.settled_seq(), px->seq);
  const uint64_t deferred = runner.deferred_swaps();
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(All(Period(runner), 0.5f)) << "the successor took over with no room to retire X";
  }
  EXPECT_NE(px->successor, nullptr);
  EXPECT_EQ(runner.deferred_swaps(), deferred + 10) << "a waiting successor is a deferred swap";
  reclaimed.push_back(runner.PopRetired());
  EXPECT_TRUE(All(Period(runner), 0.75f));
  EXPECT_EQ(runner.settled_seq(), ps->seq);
  std::vector<Plan*> back = TakeAll(runner);
  EXPECT_EQ(back.front(), ps);
  EXPECT_EQ(back.back(), px);
  DeleteAll(back);
  DeleteAll(reclaimed);
}

// A real audio thread running periods while this thread publishes 2,000
// plans and reclaims retired ones: every period runs exactly one plan from
// start to end, plans are never seen out of publication order, and every
// plan comes back to the publisher exactly once.
TEST(Runner, PublishingWhileTheAudioThreadRunsLosesNoPlan) {
  constexpr uint64_t kPlans = 2000;
  Runner runner;
  std::set<Plan*> published;
  std::vector<Plan*> back;
  {
    auto first = MakePlan(1.0f, 1);  // output == seq
    published.insert(first.get());
    ASSERT_EQ(runner.Publish(first.release()), nullptr);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> mixed_periods{0}, backwards{0}, periods{0};
  std::thread audio([&] {
    AudioThreadScope role;
    std::vector<float> in(kPeriod, 1.0f), out(kPeriod);
    const float* ip[] = {in.data()};
    float* op[] = {out.data()};
    float last = 0.0f;
    while (!stop.load(std::memory_order_acquire)) {
      runner.Process(ip, 1, op, 1, kPeriod);
      if (!std::all_of(out.begin(), out.end(), [&](float s) { return s == out[0]; })) {
        mixed_periods.fetch_add(1);
      }
      if (out[0] < last) backwards.fetch_add(1);
      last = out[0];
      periods.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::yield();
    }
  });

  for (uint64_t seq = 2; seq <= kPlans; ++seq) {
    auto p = MakePlan(static_cast<float>(seq), seq);  // output == seq
    published.insert(p.get());
    if (Plan* replaced = runner.Publish(p.release())) back.push_back(replaced);
    while (Plan* r = runner.PopRetired()) back.push_back(r);
    if (seq % 64 == 0) std::this_thread::yield();
  }
  // Let the audio thread take the last one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (runner.settled_seq() != kPlans && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop.store(true, std::memory_order_release);
  audio.join();
  EXPECT_EQ(runner.settled_seq(), kPlans);
  EXPECT_EQ(mixed_periods.load(), 0u) << "a plan changed in the middle of a period";
  EXPECT_EQ(backwards.load(), 0u) << "an older plan ran after a newer one";
  EXPECT_EQ(runner.silent_cycles(), 0u);
  EXPECT_GT(periods.load(), 0u);

  for (Plan* p : TakeAll(runner)) back.push_back(p);
  EXPECT_EQ(back.size(), published.size()) << "plans lost or handed back twice";
  EXPECT_EQ(std::set<Plan*>(back.begin(), back.end()), published);
  DeleteAll(back);
}

}  // namespace
}  // namespace aers::rt

// One thread runs process() in a loop on a continuous sine while another
// applies 1,000+ random edits. Properties: the audio thread never allocates
// or frees, the output never jumps more than a crossfade allows, and node
// state survives the edits around it. Also run under ThreadSanitizer in CI.
#include <atomic>
#include <random>
#include <thread>

#include "common/alloc_counter.h"
#include "common/rig.h"
#include "rt/thread_role.h"

namespace aers::test {
namespace {

constexpr double kRate = 48000.0;
constexpr uint32_t kPeriod = 64;
constexpr double kFreq = 100.0;
constexpr double kAmp = 0.5;

struct AudioStats {
  std::atomic<uint64_t> periods{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<double> max_jump{0.0};
  std::atomic<double> last_peak{0.0};
};

// The audio thread: process() in a loop, measuring as it goes (no allocation
// here either: everything is preallocated before the counter is armed).
void AudioLoop(engine::Engine& engine, std::atomic<bool>& stop, AudioStats& stats,
               std::chrono::microseconds pace = {}) {
  rt::AudioThreadScope audio;  // this thread only runs periods
  std::vector<float> in(kPeriod), out(kPeriod);
  const float* ip[] = {in.data()};
  float* op[] = {out.data()};
  double phase = 0.0;
  const double inc = kFreq / kRate;
  float last = 0.0f;
  bool have_last = false;
  double max_jump = 0.0;
  double peak = 0.0;
  uint64_t periods = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (uint32_t n = 0; n < kPeriod; ++n) {
      in[n] = static_cast<float>(kAmp * std::sin(2.0 * std::numbers::pi * phase));
      phase += inc;
      if (phase >= 1.0) phase -= 1.0;
    }
    ArmAllocCounter();
    engine.runner().Process(ip, 1, op, 1, kPeriod);
    stats.allocations.fetch_add(DisarmAllocCounter(), std::memory_order_relaxed);
    for (uint32_t n = 0; n < kPeriod; ++n) {
      if (have_last) max_jump = std::max(max_jump, std::fabs(static_cast<double>(out[n] - last)));
      last = out[n];
      have_last = true;
      peak = std::max(peak, std::fabs(static_cast<double>(out[n])));
    }
    if (++periods % 64 == 0) {
      stats.last_peak.store(peak, std::memory_order_relaxed);
      peak = 0.0;
    }
    stats.max_jump.store(max_jump, std::memory_order_relaxed);
    stats.periods.store(periods, std::memory_order_relaxed);
    if (pace.count() > 0) std::this_thread::sleep_for(pace);
  }
}

// The main path is in -> n0 -> n1 ... -> out where every node passes the
// sine at (near) unity gain; edits insert and remove nodes, add and drop
// parallel branches, set parameters and add idle nodes.
class Editor {
 public:
  explicit Editor(uint32_t seed) : rng_(seed) {}

  model::GraphSpec Initial() {
    model::GraphSpec s;
    s.inputs.push_back({"in", 1, {}});
    s.outputs.push_back({"out", 1, {}});
    chain_ = {"keep_delay", "keep_lp"};
    s.nodes.push_back({"keep_delay", "delay", 1, {{"delay_ms", 0.0}, {"max_delay_ms", 10.0}}});
    s.nodes.push_back(
        {"keep_lp", "biquad", 1, {{"type", std::string("lowpass")}, {"freq_hz", 8000.0}}});
    Rewire(s);
    return s;
  }

  // One random edit of `s`; returns a description.
  std::string Mutate(model::GraphSpec& s) {
    const int choice = std::uniform_int_distribution<int>(0, 9)(rng_);
    if (choice <= 2 && chain_.size() < 12) {  // insert a unity node into the chain
      const std::string name = "n" + std::to_string(next_id_++);
      const int kind = std::uniform_int_distribution<int>(0, 2)(rng_);
      if (kind == 0) {
        s.nodes.push_back({name, "gain", 1, {{"gain_db", 0.0}}});
      } else if (kind == 1) {
        s.nodes.push_back({name, "meter", 1, {{"window_ms", 10.0}}});
      } else {
        s.nodes.push_back({name,
                           "biquad",
                           1,
                           {{"type", std::string("allpass")}, {"freq_hz", 20000.0}, {"q", 0.5}}});
      }
      const auto pos = std::uniform_int_distribution<size_t>(0, chain_.size())(rng_);
      chain_.insert(chain_.begin() + static_cast<ptrdiff_t>(pos), name);
      Rewire(s);
      return "insert " + name;
    }
    if (choice <= 4 && chain_.size() > 2) {  // remove a non-kept chain node
      const auto pos = std::uniform_int_distribution<size_t>(0, chain_.size() - 1)(rng_);
      const std::string name = chain_[pos];
      if (name.rfind("keep_", 0) == 0) return "noop";
      chain_.erase(chain_.begin() + static_cast<ptrdiff_t>(pos));
      std::erase_if(s.nodes, [&](const model::NodeSpec& n) { return n.name == name; });
      Rewire(s);
      return "remove " + name;
    }
    if (choice == 5) {  // toggle a parallel branch at -12 dB into the output
      branch_ = !branch_;
      if (branch_) {
        s.nodes.push_back({"branch", "gain", 1, {{"gain_db", -12.0}}});
      } else {
        std::erase_if(s.nodes, [](const model::NodeSpec& n) { return n.name == "branch"; });
      }
      Rewire(s);
      return branch_ ? "branch on" : "branch off";
    }
    if (choice == 6) {  // idle node on / off
      idle_ = !idle_;
      if (idle_) {
        s.nodes.push_back({"idle", "tone", 1, {{"level_db", -30.0}}});
      } else {
        std::erase_if(s.nodes, [](const model::NodeSpec& n) { return n.name == "idle"; });
      }
      return "idle toggle";
    }
    // Parameter changes on whatever is there.
    for (auto& n : s.nodes) {
      if (n.kind == "gain" && n.name != "branch") {
        n.params["gain_db"] = std::uniform_real_distribution<double>(-0.5, 0.0)(rng_);
      } else if (n.name == "branch") {
        n.params["gain_db"] = std::uniform_real_distribution<double>(-14.0, -10.0)(rng_);
      } else if (n.name == "keep_lp") {
        n.params["freq_hz"] = std::uniform_real_distribution<double>(6000.0, 9000.0)(rng_);
      }
    }
    return "params";
  }

 private:
  void Rewire(model::GraphSpec& s) const {
    s.routes.clear();
    std::string prev = "in";
    for (const auto& n : chain_) {
      s.routes.push_back({model::Endpoint::Parse(prev), model::Endpoint::Parse(n)});
      prev = n;
    }
    s.routes.push_back({model::Endpoint::Parse(prev), model::Endpoint::Parse("out")});
    if (branch_) {
      s.routes.push_back({model::Endpoint::Parse("in"), model::Endpoint::Parse("branch")});
      s.routes.push_back({model::Endpoint::Parse("branch"), model::Endpoint::Parse("out")});
    }
  }

  std::mt19937 rng_;
  std::vector<std::string> chain_;
  int next_id_ = 0;
  bool branch_ = false;
  bool idle_ = false;
};

struct StressResult {
  int applied = 0;
  uint64_t revision = 0;
  uint64_t allocations = 0;
  double max_jump = 0.0;
  double last_peak = 0.0;
  uint64_t periods = 0;
};

StressResult RunStress(double crossfade_ms, int edits) {
  StressResult result;
  auto kinds = dsp::MakeBuiltinRegistry();
  engine::EngineOptions opts;
  opts.format = {kRate, kPeriod};
  opts.crossfade_ms = crossfade_ms;
  opts.settle_timeout = std::chrono::milliseconds(2000);
  engine::Engine engine(*kinds, opts);
  Editor editor(12345);
  model::GraphSpec spec = editor.Initial();
  EXPECT_TRUE(engine.Apply(spec).ok());

  std::atomic<bool> stop{false};
  AudioStats stats;
  std::thread audio(AudioLoop, std::ref(engine), std::ref(stop), std::ref(stats),
                    std::chrono::microseconds{});
  while (stats.periods.load() < 200) std::this_thread::yield();

  for (int i = 0; i < edits; ++i) {
    model::GraphSpec next = spec;
    const std::string what = editor.Mutate(next);
    auto r = engine.Apply(next);
    EXPECT_TRUE(r.ok()) << "edit " << i << " (" << what << "): " << r.status();
    if (!r.ok()) break;
    spec = std::move(next);
    ++result.applied;
  }
  // Let the last crossfade finish, then stop the audio thread.
  const uint64_t until = stats.periods.load() + 200;
  while (stats.periods.load() < until) std::this_thread::yield();
  stop = true;
  audio.join();
  engine.Reclaim();
  result.revision = engine.revision();
  result.allocations = stats.allocations.load();
  result.max_jump = stats.max_jump.load();
  result.last_peak = stats.last_peak.load();
  result.periods = stats.periods.load();
  return result;
}

// A 100 Hz sine at 0.5 moves at most ~0.0065 per sample; a hard cut of the
// -12 dB branch or of an allpass in the path jumps far more.
constexpr double kNatural = 2.0 * std::numbers::pi * kFreq / kRate * kAmp;

TEST(EngineStress, ThousandRandomEditsWhileAudioRuns) {
  constexpr int kEdits = 1000;
  const StressResult r = RunStress(5.0, kEdits);
  EXPECT_EQ(r.applied, kEdits);
  EXPECT_EQ(r.revision, static_cast<uint64_t>(kEdits + 1));
  EXPECT_EQ(r.allocations, 0u) << "the audio thread allocated or freed memory";
  EXPECT_LT(r.max_jump, 3.0 * kNatural) << "audible discontinuity at an edit";
  // Audio flowed through to the end (unity path, maybe plus the branch).
  EXPECT_GT(r.last_peak, 0.4);
  std::printf("periods run: %llu, max jump %.5f (natural slope %.5f)\n",
              static_cast<unsigned long long>(r.periods), r.max_jump, kNatural);
}

TEST(EngineStress, SameEditsWithoutCrossfadeDoClick) {
  // The discontinuity check above can fail: with the crossfade off, the same
  // kind of edits produce jumps well above the threshold.
  const StressResult r = RunStress(0.0, 200);
  EXPECT_EQ(r.allocations, 0u);
  EXPECT_GT(r.max_jump, 3.0 * kNatural);
}

// Route edits that arrive while a crossfade runs do not wait for it: the
// first is parked behind the fade, a later one replaces it, and once the
// fade has ended the last one is faded in from the settled mix. Shown by the
// runner's plan sequence: the fade of A, then the one of C; B never runs.
TEST(EngineStress, EditsDuringAFadeAreParkedAndTheLastOneWins) {
  auto kinds = dsp::MakeBuiltinRegistry();
  engine::EngineOptions opts;
  opts.format = {kRate, kPeriod};
  opts.crossfade_ms = 1000.0;  // long enough that the edits below land inside it
  opts.settle_timeout = std::chrono::milliseconds(60000);
  engine::Engine engine(*kinds, opts);
  auto graph = [](double branch_db) {
    model::GraphSpec s;
    s.inputs.push_back({"in", 1, {}});
    s.outputs.push_back({"out", 1, {}});
    s.nodes.push_back({"path", "gain", 1, {{"gain_db", 0.0}}});
    s.routes.push_back({model::Endpoint::Parse("in"), model::Endpoint::Parse("path")});
    s.routes.push_back({model::Endpoint::Parse("path"), model::Endpoint::Parse("out")});
    if (branch_db > -100.0) {
      s.nodes.push_back({"branch", "gain", 1, {{"gain_db", branch_db}}});
      s.routes.push_back({model::Endpoint::Parse("in"), model::Endpoint::Parse("branch")});
      s.routes.push_back({model::Endpoint::Parse("branch"), model::Endpoint::Parse("out")});
    }
    return s;
  };
  ASSERT_TRUE(engine.Apply(graph(-200.0)).ok());
  std::atomic<bool> stop{false};
  AudioStats stats;
  // Paced like a real device (64 frames per ~1.3 ms), so the fade takes
  // about a second of wall time.
  std::thread audio(AudioLoop, std::ref(engine), std::ref(stop), std::ref(stats),
                    std::chrono::microseconds(1300));
  while (stats.periods.load() < 20) std::this_thread::yield();
  const uint64_t settled = engine.runner().settled_seq();

  ASSERT_TRUE(engine.Apply(graph(-12.0)).ok());  // A: the branch fades in
  while (engine.runner().has_pending()) std::this_thread::yield();
  auto b = engine.Apply(graph(-200.0));  // B: the branch out again
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->replanned);
  // B returned while A's fade still ran: it did not wait for it.
  EXPECT_EQ(engine.runner().settled_seq(), settled);
  // C: a different branch level, replacing B behind the same fade.
  ASSERT_TRUE(engine.Apply(graph(-6.0)).ok());
  EXPECT_EQ(engine.runner().settled_seq(), settled);
  EXPECT_EQ(engine.revision(), 4u);

  // A's fade ends, then C's (from A's graph): two plans, not three.
  while (engine.runner().settled_seq() < settled + 2) std::this_thread::yield();
  const uint64_t until = stats.periods.load() + 100;
  while (stats.periods.load() < until) std::this_thread::yield();
  stop = true;
  audio.join();
  engine.Reclaim();
  EXPECT_EQ(engine.runner().settled_seq(), settled + 2) << "B's plan ran: edits were not coalesced";
  // The output is C's graph: unity path plus the branch at -6 dB.
  EXPECT_NEAR(stats.last_peak.load(), kAmp * (1.0 + std::pow(10.0, -6.0 / 20.0)), 0.01);
  EXPECT_LT(stats.max_jump.load(), 3.0 * kNatural) << "a fade was cut";
  EXPECT_EQ(stats.allocations.load(), 0u);
}

TEST(EngineStress, AllocationCounterSeesAllocations) {
  // The counter must be able to fail: an allocation while armed is counted.
  ArmAllocCounter();
  auto* p = new std::vector<int>(100);
  delete p;
  EXPECT_GE(DisarmAllocCounter(), 2u);
}

}  // namespace
}  // namespace aers::test

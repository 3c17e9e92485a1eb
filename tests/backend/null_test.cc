// The null backend (daemon/backend/null.h): it runs the engine's graph on
// its own clock-paced audio thread, is the engine's port host while
// started, and pauses its thread to resize its buffers when an edit changes
// the graph's channel counts, with the edit's plan running afterwards.
#include "backend/null.h"

#include <chrono>
#include <thread>

#include "common/rig.h"
#include "gtest/gtest.h"

namespace aers::backend {
namespace {

using namespace std::chrono_literals;
using test::GraphBuilder;
using test::WaitFor;

// tone -> meter -> outputs: the meter's peak proves audio ran through the
// current plan.
model::GraphSpec ToneGraph(int channels, double level_db = -6.0) {
  return GraphBuilder()
      .Output("main", channels)
      .Node("osc", "tone", channels, {{"freq_hz", 1000.0}, {"level_db", level_db}})
      .Node("m", "meter", channels)
      .Chain({"osc", "m", "main"})
      .Build();
}

class NullBackendTest : public ::testing::Test {
 protected:
  NullBackendTest() : rig_(48000.0, 256) {}
  NullOptions Options() {
    NullOptions o;
    o.sample_rate_hz = 48000.0;
    o.period_frames = 256;
    o.rt_priority = 0;
    return o;
  }
  float Peak(const char* meter, int ch = 0) {
    auto r = rig_.engine().ReadMeter(meter);
    return r.ok() && static_cast<size_t>(ch) < r->size() ? (*r)[static_cast<size_t>(ch)].peak
                                                         : -1.0f;
  }
  test::Rig rig_;
};

TEST_F(NullBackendTest, RunsTheGraphOnItsOwnThreadUntilStopped) {
  rig_.Apply(ToneGraph(2));
  NullBackend backend(rig_.engine(), Options());
  EXPECT_FALSE(backend.status().running);
  ASSERT_TRUE(backend.Start().ok());
  const uint64_t start = rig_.engine().runner().cycles();
  ASSERT_TRUE(WaitFor([&] { return rig_.engine().runner().cycles() > start + 20; }));
  EXPECT_TRUE(backend.status().running);
  EXPECT_EQ(backend.status().name, "null");
  EXPECT_EQ(backend.status().period_frames, 256u);
  // -6 dBFS tone: peak 0.501.
  ASSERT_TRUE(WaitFor([&] { return Peak("m") > 0.45f; })) << Peak("m");
  EXPECT_NEAR(Peak("m", 1), 0.501f, 0.01f);
  EXPECT_EQ(rig_.engine().runner().silent_cycles(), 0u);

  backend.Stop();
  EXPECT_FALSE(backend.status().running);
  const uint64_t stopped_at = rig_.engine().runner().cycles();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rig_.engine().runner().cycles(), stopped_at) << "periods after Stop()";
  backend.Stop();  // idempotent
}

TEST_F(NullBackendTest, AChannelCountChangeResizesBuffersAndRunsTheNewPlan) {
  rig_.Apply(ToneGraph(1));
  NullBackend backend(rig_.engine(), Options());
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Peak("m") > 0.45f; }));

  // 1 -> 4 output channels at another level: the edit goes to the engine,
  // which has the backend pause, resize and restart around the new plan.
  auto r = rig_.engine().Apply(ToneGraph(4, -20.0));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(backend.status().running);
  const uint64_t after = rig_.engine().runner().cycles();
  ASSERT_TRUE(WaitFor([&] { return rig_.engine().runner().cycles() > after + 20; }));
  // -20 dBFS on every one of the four channels: the new plan runs with
  // buffers for four channels (a plan for 4 outputs on 1-channel buffers
  // would be silent periods).
  ASSERT_TRUE(WaitFor([&] { return Peak("m", 3) > 0.09f && Peak("m", 0) < 0.2f; }))
      << Peak("m", 0) << " " << Peak("m", 3);
  for (int ch = 0; ch < 4; ++ch) EXPECT_NEAR(Peak("m", ch), 0.1f, 0.01f) << "channel " << ch;
  const uint64_t silent = rig_.engine().runner().silent_cycles();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rig_.engine().runner().silent_cycles(), silent) << "silent periods after the swap";
  backend.Stop();
}

TEST_F(NullBackendTest, AnEditRefusedByTheEngineLeavesTheRunningGraphAlone) {
  rig_.Apply(ToneGraph(2));
  NullBackend backend(rig_.engine(), Options());
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Peak("m") > 0.45f; }));
  model::GraphSpec bad = ToneGraph(3);
  bad.nodes[0].params["level_db"] = 1000.0;  // out of range: refused before any port change
  EXPECT_FALSE(rig_.engine().Apply(bad).ok());
  EXPECT_EQ(rig_.engine().spec(), ToneGraph(2));
  const uint64_t c = rig_.engine().runner().cycles();
  ASSERT_TRUE(WaitFor([&] { return rig_.engine().runner().cycles() > c + 10; }));
  EXPECT_NEAR(Peak("m", 1), 0.501f, 0.01f);
  backend.Stop();
}

TEST_F(NullBackendTest, AfterStopEditsNoLongerReachTheBackend) {
  rig_.Apply(ToneGraph(1));
  {
    NullBackend backend(rig_.engine(), Options());
    ASSERT_TRUE(backend.Start().ok());
    backend.Stop();
  }  // destroyed: the engine must not call into it any more
  auto r = rig_.engine().Apply(ToneGraph(2));
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST(DrainFolded, ConsecutiveEventsOfOneTypeFoldIntoOne) {
  rt::SpscRing<BackendEvent, 16> ring;
  using T = BackendEvent::Type;
  for (const BackendEvent& e :
       {BackendEvent{T::kXrun, 10.0, 1}, BackendEvent{T::kXrun, 30.0, 2},
        BackendEvent{T::kOverrun, 5.0, 1}, BackendEvent{T::kXrun, 1.0, 1}}) {
    ASSERT_TRUE(ring.TryPush(e));
  }
  std::vector<BackendEvent> got;
  DrainFolded(ring, [&](const BackendEvent& e) { got.push_back(e); });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, T::kXrun);
  EXPECT_EQ(got[0].count, 3u);  // 1 + 2
  EXPECT_EQ(got[0].value, 30.0);
  EXPECT_EQ(got[1].type, T::kOverrun);
  EXPECT_EQ(got[2].type, T::kXrun);
  EXPECT_EQ(got[2].count, 1u);
  got.clear();
  DrainFolded(ring, [&](const BackendEvent& e) { got.push_back(e); });
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace aers::backend

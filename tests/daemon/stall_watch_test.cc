// StallWatch (daemon/stall_watch.h) on made-up times: when a backend that
// says it runs counts as stalled, and when it runs again.
#include "stall_watch.h"

#include "gtest/gtest.h"

namespace aers::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = StallWatch::Clock;

constexpr double kPeriod64 = 64.0 / 48000.0;  // 1.33 ms

TEST(StallWatch, PeriodsThatRunAreNeverAStall) {
  StallWatch w;
  const Clock::time_point t0{};
  uint64_t cycles = 0;
  for (int i = 0; i < 100; ++i) {
    // Late wake-ups of a loaded host: 50 ms apart, a period or more each.
    cycles += 1 + (i % 40);
    EXPECT_FALSE(w.Observe(t0 + i * 50ms, true, cycles, kPeriod64).has_value()) << i;
    EXPECT_FALSE(w.stalled_for(t0 + i * 50ms).has_value());
  }
}

TEST(StallWatch, NoPeriodForASecondIsAStallUntilTheNextPeriod) {
  StallWatch w;
  const Clock::time_point t0{};
  EXPECT_FALSE(w.Observe(t0, true, 10, kPeriod64));
  EXPECT_FALSE(w.Observe(t0 + 999ms, true, 10, kPeriod64));
  EXPECT_FALSE(w.stalled_for(t0 + 999ms));
  const auto stalled = w.Observe(t0 + 1000ms, true, 10, kPeriod64);
  ASSERT_TRUE(stalled);
  EXPECT_TRUE(stalled->stalled);
  EXPECT_EQ(stalled->since, 1000ms);
  // Said once; the time counts from the last period seen.
  EXPECT_FALSE(w.Observe(t0 + 3000ms, true, 10, kPeriod64));
  ASSERT_TRUE(w.stalled_for(t0 + 3000ms));
  EXPECT_EQ(*w.stalled_for(t0 + 3000ms), 3000ms);
  const auto resumed = w.Observe(t0 + 3050ms, true, 11, kPeriod64);
  ASSERT_TRUE(resumed);
  EXPECT_FALSE(resumed->stalled);
  EXPECT_EQ(resumed->since, 3050ms);
  EXPECT_FALSE(w.stalled_for(t0 + 3050ms));
  // And again, measured from the new last period.
  EXPECT_FALSE(w.Observe(t0 + 4000ms, true, 11, kPeriod64));
  EXPECT_TRUE(w.Observe(t0 + 4050ms, true, 11, kPeriod64));
}

TEST(StallWatch, LongPeriodsWidenTheWindow) {
  // 8192 frames at 8000 Hz: a period of 1.024 s, 16 of them 16.4 s.
  StallWatch w;
  const Clock::time_point t0{};
  const double period = 8192.0 / 8000.0;
  EXPECT_FALSE(w.Observe(t0, true, 1, period));
  EXPECT_FALSE(w.Observe(t0 + 16s, true, 1, period));
  EXPECT_TRUE(w.Observe(t0 + 17s, true, 1, period));
}

TEST(StallWatch, ABackendThatSaysItStoppedIsNotStalled) {
  StallWatch w;
  const Clock::time_point t0{};
  EXPECT_FALSE(w.Observe(t0, false, 5, kPeriod64));
  EXPECT_FALSE(w.Observe(t0 + 10s, false, 5, kPeriod64));
  EXPECT_FALSE(w.stalled_for(t0 + 10s));
  // Running again, the window starts when it said so.
  EXPECT_FALSE(w.Observe(t0 + 10500ms, true, 5, kPeriod64));
  EXPECT_FALSE(w.Observe(t0 + 11s, true, 5, kPeriod64));
  EXPECT_TRUE(w.Observe(t0 + 11500ms, true, 5, kPeriod64));
  // A stalled backend that then says it stopped is no longer stalled: its
  // own state says what is wrong.
  const auto change = w.Observe(t0 + 12s, false, 5, kPeriod64);
  ASSERT_TRUE(change);
  EXPECT_FALSE(change->stalled);
  EXPECT_FALSE(w.stalled_for(t0 + 12s));
}

TEST(StallWatch, AnUnknownPeriodUsesTheMinimum) {
  StallWatch w;
  const Clock::time_point t0{};
  EXPECT_FALSE(w.Observe(t0, true, 0, 0.0));
  EXPECT_TRUE(w.Observe(t0 + StallWatch::kMinimum, true, 0, 0.0));
}

}  // namespace
}  // namespace aers::daemon

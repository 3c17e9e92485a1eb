// The housekeeping loop's scheduling (daemon/housekeeping.h), on made-up
// times, and its signal handling on a real signalfd.
#include "housekeeping.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace aers::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = Housekeeping::Clock;

TEST(Housekeeping, TasksRunFirstTickThenAtTheirPeriodInOrder) {
  Housekeeping h;
  std::vector<std::string> ran;
  h.Every("every tick", Clock::duration::zero(), [&](auto) { ran.push_back("tick"); });
  h.Every("250 ms", 250ms, [&](auto) { ran.push_back("drain"); });
  h.Every("1 s", 1s, [&](auto) { ran.push_back("stats"); });
  const Clock::time_point t0{};
  h.RunDue(t0);
  EXPECT_EQ(ran, (std::vector<std::string>{"tick", "drain", "stats"}));
  ran.clear();
  h.RunDue(t0 + 50ms);
  EXPECT_EQ(ran, (std::vector<std::string>{"tick"}));
  ran.clear();
  h.RunDue(t0 + 250ms);
  EXPECT_EQ(ran, (std::vector<std::string>{"tick", "drain"}));
  ran.clear();
  h.RunDue(t0 + 499ms);  // 249 ms after the last drain
  EXPECT_EQ(ran, (std::vector<std::string>{"tick"}));
  ran.clear();
  h.RunDue(t0 + 1000ms);
  EXPECT_EQ(ran, (std::vector<std::string>{"tick", "drain", "stats"}));
}

TEST(Housekeeping, ALateTickRunsATaskOnceNotOncePerMissedPeriod) {
  Housekeeping h;
  int runs = 0;
  Clock::time_point seen{};
  h.Every("100 ms", 100ms, [&](Clock::time_point now) {
    ++runs;
    seen = now;
  });
  const Clock::time_point t0{};
  h.RunDue(t0);
  h.RunDue(t0 + 1s);  // ten periods late
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(seen, t0 + 1s);
  h.RunDue(t0 + 1050ms);  // the next run is a period after the late one
  EXPECT_EQ(runs, 2);
  h.RunDue(t0 + 1100ms);
  EXPECT_EQ(runs, 3);
}

TEST(Housekeeping, RunStopsWhenTheHandlerSaysSoAndFinishesThatTick) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &mask, nullptr), 0);
  const int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  Housekeeping h;
  int ticks = 0;
  h.Every("count", Clock::duration::zero(), [&](auto) {
    if (++ticks == 3) kill(getpid(), SIGUSR2);
  });
  std::vector<int> signals;
  h.Run(fd, 5ms, [&](int signo) {
    signals.push_back(signo);
    return false;
  });
  close(fd);
  EXPECT_EQ(signals, std::vector<int>{SIGUSR2});
  EXPECT_GE(ticks, 4);  // the tick that saw the signal ran its tasks too
}

}  // namespace
}  // namespace aers::daemon

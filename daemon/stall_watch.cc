#include "stall_watch.h"

#include <algorithm>

namespace aers::daemon {

std::optional<StallWatch::Change> StallWatch::Observe(Clock::time_point now, bool running,
                                                      uint64_t cycles, double period_s) {
  const bool was = stalled_since_ns_.load(std::memory_order_relaxed) >= 0;
  // The window starts again at every period, and when the backend starts
  // (or says again that it) runs.
  const bool started = running && !running_;
  running_ = running;
  if (!seen_ || !running || started || cycles != cycles_) {
    const Clock::duration since = now - moved_;
    seen_ = true;
    cycles_ = cycles;
    moved_ = now;
    if (!was) return std::nullopt;
    stalled_since_ns_.store(-1, std::memory_order_relaxed);
    return Change{false, since};
  }
  const auto periods = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(period_s, 0.0) * kPeriods));
  const Clock::duration window = std::max(kMinimum, periods);
  if (was || now - moved_ < window) return std::nullopt;
  stalled_since_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(moved_.time_since_epoch()).count(),
      std::memory_order_relaxed);
  return Change{true, now - moved_};
}

std::optional<StallWatch::Clock::duration> StallWatch::stalled_for(Clock::time_point now) const {
  const int64_t since = stalled_since_ns_.load(std::memory_order_relaxed);
  if (since < 0) return std::nullopt;
  return now - Clock::time_point(std::chrono::nanoseconds(since));
}

}  // namespace aers::daemon

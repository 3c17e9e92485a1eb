// Tells a backend whose periods run from one that says it runs but whose
// periods stopped: a JACK server stopped (SIGSTOP, a debugger) or hung, a
// client the server no longer calls, a device that no longer completes
// periods. The backend's own `running` flag cannot see these: nothing tells
// it that the next period will not come.
//
// Thread: Observe() on one thread (the housekeeping thread); stalled_for()
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace aers::daemon {

class StallWatch {
 public:
  using Clock = std::chrono::steady_clock;

  /// A backend is stalled after no period for the longer of kMinimum and
  /// kPeriods periods: long enough that a loaded host's late wake-ups (tens
  /// of milliseconds) never count, short enough for a health check.
  static constexpr Clock::duration kMinimum = std::chrono::seconds(1);
  static constexpr int kPeriods = 16;

  /// A change of state, seen by Observe.
  struct Change {
    bool stalled;           ///< true: periods stopped; false: they run again
    Clock::duration since;  ///< time since the last period seen before `now`
  };

  /// Feeds what the backend reports at `now`: whether it says it runs, the
  /// count of periods run so far (rt::Runner::cycles) and the period's
  /// length in seconds (0: unknown, kMinimum alone applies). Returns the
  /// change when the state turns, nothing otherwise. A backend that says it
  /// does not run is never stalled (it reports its own state).
  std::optional<Change> Observe(Clock::time_point now, bool running, uint64_t cycles,
                                double period_s);

  /// How long no period has run, once stalled; nullopt while periods run.
  std::optional<Clock::duration> stalled_for(Clock::time_point now) const;

 private:
  uint64_t cycles_ = 0;
  bool seen_ = false;
  bool running_ = false;  // as last observed
  Clock::time_point moved_{};
  // moved_ as nanoseconds since the clock's epoch while stalled, -1 while
  // periods run (read by stalled_for on other threads).
  std::atomic<int64_t> stalled_since_ns_{-1};
};

}  // namespace aers::daemon

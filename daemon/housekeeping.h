// The daemon's housekeeping thread (the main thread after start-up): waits
// for signals and runs periodic tasks (reclaiming retired plans, draining
// what the audio side reported, the stats file, sd_notify STATUS and
// WATCHDOG, giving freed memory back) at their own intervals.
//
// Thread: one thread (the one that calls Run()); tasks run on it, one at a
// time, never on the audio thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace aers::daemon {

class Housekeeping {
 public:
  using Clock = std::chrono::steady_clock;
  /// A periodic task; gets the time of the tick that runs it.
  using Task = std::function<void(Clock::time_point now)>;
  /// A signal from the signal fd (signalfd_siginfo::ssi_signo); returns
  /// false to stop the loop.
  using SignalHandler = std::function<bool(int signo)>;

  /// Runs `task` on the first tick and then whenever `period` has passed
  /// since it last ran (period zero: every tick). Tasks run in the order they
  /// were added. Call before Run().
  void Every(std::string name, Clock::duration period, Task task);

  /// Loops until a handler returns false: waits up to `tick` for signals on
  /// `signal_fd` (a signalfd), hands each to `on_signal`, then runs the due
  /// tasks. Returns after the tick in which the handler said stop (the
  /// tasks of that tick still run).
  void Run(int signal_fd, std::chrono::milliseconds tick, const SignalHandler& on_signal);

  /// Runs every task due at `now` (one tick without waiting; what Run does
  /// after the wait).
  void RunDue(Clock::time_point now);

 private:
  struct Entry {
    std::string name;
    Clock::duration period;
    Task task;
    bool ran = false;
    Clock::time_point next;
  };
  std::vector<Entry> tasks_;
};

}  // namespace aers::daemon

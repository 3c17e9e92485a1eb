// Events for watchers (graph changed, xruns, backend lost/restored, config
// reloaded), fanned out to bounded per-watcher queues.
//
// Thread: Publish() from any non-real-time thread (the audio thread's events
// reach it through the backend's ring first); it never blocks on a slow
// watcher: a full queue drops the event and counts it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace aers::control {

struct Event {
  enum class Type {
    kGraphChanged,
    kXrun,
    kBackendLost,
    kBackendRestored,
    kConfigReloaded,
    kStateDiverged,  ///< `text`: state file and error; `revision`: what runs
  };
  Type type = Type::kGraphChanged;
  uint64_t seq = 0;
  int64_t unix_time_ms = 0;
  uint64_t dropped_before = 0;  ///< set per watcher on delivery
  // kGraphChanged
  uint64_t revision = 0;
  std::vector<std::string> changes;
  std::string origin;
  // kXrun: total; kBackendLost: reason in `text`; kBackendRestored: backend in `text`
  uint64_t xruns_total = 0;
  std::string text;
  // kConfigReloaded
  bool ok = true;
};

class EventBus {
 public:
  class Subscription {
   public:
    /// Waits up to `timeout` for the next event.
    std::optional<Event> Next(std::chrono::milliseconds timeout);
    /// Wakes a waiting Next() (shutdown, cancel).
    void Close();
    uint64_t dropped() const;

   private:
    friend class EventBus;
    explicit Subscription(size_t capacity) : capacity_(capacity) {}
    void Push(const Event& e);

    const size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Event> queue_;
    uint64_t dropped_total_ = 0;
    uint64_t dropped_pending_ = 0;  // drops since the last queued event
    bool closed_ = false;
  };

  explicit EventBus(size_t per_watcher_capacity = 256) : capacity_(per_watcher_capacity) {}

  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  /// Stamps seq and time, delivers to every watcher. Never blocks on one.
  void Publish(Event e);
  /// Closes every subscription (shutdown).
  void CloseAll();
  /// Events dropped over all watchers so far.
  uint64_t dropped() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;
  uint64_t seq_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace aers::control

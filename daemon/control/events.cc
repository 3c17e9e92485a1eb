#include "control/events.h"

#include <algorithm>

namespace aers::control {

std::optional<Event> EventBus::Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  Event e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

void EventBus::Subscription::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

uint64_t EventBus::Subscription::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}

void EventBus::Subscription::Push(const Event& e) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (queue_.size() >= capacity_) {
      ++dropped_total_;
      ++dropped_pending_;
      return;
    }
    queue_.push_back(e);
    // The drops happened between the previous queued event and this one.
    queue_.back().dropped_before = dropped_pending_;
    dropped_pending_ = 0;
  }
  cv_.notify_one();
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe() {
  auto sub = std::shared_ptr<Subscription>(new Subscription(capacity_));
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventBus::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  std::erase(subs_, sub);
}

void EventBus::Publish(Event e) {
  std::lock_guard lock(mu_);
  e.seq = ++seq_;
  e.unix_time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (const auto& s : subs_) {
    const uint64_t before = s->dropped();
    s->Push(e);
    dropped_ += s->dropped() - before;
  }
}

void EventBus::CloseAll() {
  std::lock_guard lock(mu_);
  for (const auto& s : subs_) s->Close();
}

uint64_t EventBus::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace aers::control

// Parameter values handed from any thread to the audio thread without locks.
//
// Post() stores the newest value and raises a flag; the audio thread's
// Drain() delivers each changed value once, at the start of a period, so
// the plugin's set_parameter() always runs on the audio thread between
// process() calls (never concurrently with it).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace aers::plugin {

class ParamMailbox {
 public:
  /// Non-RT. Allocates.
  explicit ParamMailbox(uint32_t count)
      : count_(count),
        values_(new std::atomic<double>[count == 0 ? 1 : count]),
        dirty_(new std::atomic<bool>[count == 0 ? 1 : count]) {
    for (uint32_t i = 0; i < count; ++i) {
      values_[i].store(0.0, std::memory_order_relaxed);
      dirty_[i].store(false, std::memory_order_relaxed);
    }
  }

  uint32_t count() const { return count_; }

  /// Any thread. Wait-free, no allocation. Ignores an out-of-range index.
  void Post(uint32_t index, double value) noexcept {
    if (index >= count_) return;
    values_[index].store(value, std::memory_order_relaxed);
    dirty_[index].store(true, std::memory_order_release);
    any_.store(true, std::memory_order_release);
  }

  /// Audio thread. Wait-free (bounded by count), no allocation. Calls
  /// `deliver(index, value)` for every value posted since the last drain.
  template <typename F>
  void Drain(F&& deliver) noexcept {
    if (!any_.load(std::memory_order_acquire)) return;
    any_.store(false, std::memory_order_relaxed);
    for (uint32_t i = 0; i < count_; ++i) {
      if (dirty_[i].exchange(false, std::memory_order_acq_rel)) {
        deliver(i, values_[i].load(std::memory_order_relaxed));
      }
    }
  }

 private:
  uint32_t count_;
  std::unique_ptr<std::atomic<double>[]> values_;
  std::unique_ptr<std::atomic<bool>[]> dirty_;
  std::atomic<bool> any_{false};
};

}  // namespace aers::plugin

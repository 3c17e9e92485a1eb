// Fixed-capacity single-producer/single-consumer ring for trivially copyable
// values: the way anything leaves (or enters) the audio thread.
//
// Memory is allocated once, in the constructor (non-RT). TryPush/TryPop are
// wait-free and never allocate; a full ring makes TryPush return false (the
// caller counts the drop).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace aers::rt {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  /// Non-RT. Capacity is rounded up to a power of two.
  explicit SpscRing(size_t capacity) {
    size_t cap = 2;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    slots_ = std::make_unique<T[]>(cap);
  }

  /// Producer thread only. Wait-free; does not allocate.
  bool TryPush(const T& value) noexcept {
    const size_t head = head_.load(std::memory_order_relaxed);
    const size_t tail = tail_.load(std::memory_order_acquire);
    if (head - tail > mask_) return false;
    slots_[head & mask_] = value;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  /// Producer thread only. Wait-free. Free slots as seen by the producer (a
  /// lower bound: the consumer may free more meanwhile).
  size_t FreeSlots() const noexcept {
    return mask_ + 1 -
           (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
  }

  /// Consumer thread only. Wait-free; does not allocate.
  bool TryPop(T& out) noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    const size_t head = head_.load(std::memory_order_acquire);
    if (head == tail) return false;
    out = slots_[tail & mask_];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  size_t capacity() const noexcept { return mask_ + 1; }

 private:
  static constexpr size_t kLine = 64;
  size_t mask_ = 0;
  std::unique_ptr<T[]> slots_;
  alignas(kLine) std::atomic<size_t> head_{0};  // written by the producer
  alignas(kLine) std::atomic<size_t> tail_{0};  // written by the consumer
};

}  // namespace aers::rt

// Fixed-capacity single-producer/single-consumer ring for trivially copyable
// values: the way anything leaves (or enters) the audio thread.
//
// The storage is part of the object (capacity is a compile-time constant), so
// the ring never allocates. TryPush/TryPop are wait-free; a full ring makes
// TryPush return false (the caller counts the drop).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <type_traits>

namespace aers::rt {

template <typename T, size_t Capacity>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "capacity must be a power of two");

 public:
  /// Producer thread only. Wait-free.
  bool TryPush(const T& value) noexcept {
    const size_t head = head_.load(std::memory_order_relaxed);
    const size_t tail = tail_.load(std::memory_order_acquire);
    if (head - tail >= Capacity) return false;
    slots_[head & kMask] = value;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  /// Producer thread only. Wait-free. Free slots as seen by the producer (a
  /// lower bound: the consumer may free more meanwhile).
  size_t FreeSlots() const noexcept {
    return Capacity -
           (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
  }

  /// Consumer thread only. Wait-free.
  bool TryPop(T& out) noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    const size_t head = head_.load(std::memory_order_acquire);
    if (head == tail) return false;
    out = slots_[tail & kMask];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  static constexpr size_t capacity() noexcept { return Capacity; }

 private:
  static constexpr size_t kMask = Capacity - 1;
  static constexpr size_t kLine = 64;
  std::array<T, Capacity> slots_{};
  alignas(kLine) std::atomic<size_t> head_{0};  // written by the producer
  alignas(kLine) std::atomic<size_t> tail_{0};  // written by the consumer
};

}  // namespace aers::rt

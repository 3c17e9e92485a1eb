// DspTimer: how long the audio thread spends in Runner::Process per period,
// recorded wait-free on the audio thread and read from any other thread.
//
// The audio thread is the only writer: it updates plain atomics with relaxed
// load + store (no read-modify-write needed), so Record() is wait-free and
// never allocates. Readers see a consistent-enough snapshot (fields are read
// one by one; a reading may straddle one period).
//
// Percentiles come from a fixed log2 histogram with 4 sub-buckets per octave
// (bucket width <= 19% of its value): p99 is the upper edge of the bucket
// holding the 99th percentile, so it over-states by at most that much.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <ctime>

namespace aers::backend {

/// A snapshot of DSP time per period. Times in microseconds.
struct DspTimeSummary {
  uint64_t periods = 0;  ///< periods recorded since start or the last reset
  double mean_us = 0.0;
  double p99_us = 0.0;  ///< upper edge of the histogram bucket
  double max_us = 0.0;
  uint64_t over_budget = 0;  ///< periods whose DSP time exceeded the period
};

class DspTimer {
 public:
  static constexpr int kSubBits = 2;               // 4 buckets per octave
  static constexpr int kBuckets = 40 << kSubBits;  // up to 2^40 ns

  /// Any thread. CLOCK_MONOTONIC in nanoseconds (vDSO: no kernel entry).
  static uint64_t NowNs() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  }

  /// Audio thread only (the single writer). Wait-free, no allocation.
  /// Records one period that took `ns`; `budget_ns` is the period's length.
  /// Returns true if the period ran over budget.
  bool Record(uint64_t ns, uint64_t budget_ns) noexcept {
    if (reset_.load(std::memory_order_acquire)) {
      // Bounded: kBuckets stores. The reader asked for fresh statistics.
      for (auto& b : hist_) b.store(0, std::memory_order_relaxed);
      count_.store(0, std::memory_order_relaxed);
      sum_ns_.store(0, std::memory_order_relaxed);
      max_ns_.store(0, std::memory_order_relaxed);
      over_.store(0, std::memory_order_relaxed);
      reset_.store(false, std::memory_order_release);
    }
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_ns_.store(sum_ns_.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
    if (ns > max_ns_.load(std::memory_order_relaxed)) {
      max_ns_.store(ns, std::memory_order_relaxed);
    }
    auto& b = hist_[static_cast<size_t>(Bucket(ns))];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const bool over = budget_ns != 0 && ns > budget_ns;
    if (over) over_.store(over_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return over;
  }

  /// Audio thread only. Records how far one period started from its
  /// nominal time: |`gap_ns` (since the previous start) - `period_ns`|.
  void RecordStartDeviation(uint64_t gap_ns, uint64_t period_ns) noexcept {
    Record(gap_ns > period_ns ? gap_ns - period_ns : period_ns - gap_ns, 0);
  }

  /// Any thread. Asks the writer to start over at its next period.
  void RequestReset() noexcept { reset_.store(true, std::memory_order_release); }

  /// Any thread. Wait-free.
  DspTimeSummary Read() const noexcept {
    DspTimeSummary s;
    s.periods = count_.load(std::memory_order_relaxed);
    if (s.periods == 0) return s;
    s.mean_us = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) /
                static_cast<double>(s.periods) / 1000.0;
    s.max_us = static_cast<double>(max_ns_.load(std::memory_order_relaxed)) / 1000.0;
    s.over_budget = over_.load(std::memory_order_relaxed);
    std::array<uint64_t, kBuckets> h{};
    uint64_t total = 0;
    for (int i = 0; i < kBuckets; ++i) {
      h[static_cast<size_t>(i)] = hist_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
      total += h[static_cast<size_t>(i)];
    }
    // Smallest bucket whose cumulative count reaches 99% of the total.
    const uint64_t target = total - total / 100;
    uint64_t acc = 0;
    for (int i = 0; i < kBuckets; ++i) {
      acc += h[static_cast<size_t>(i)];
      if (acc >= target && acc > 0) {
        s.p99_us = static_cast<double>(BucketUpperNs(i)) / 1000.0;
        break;
      }
    }
    if (s.p99_us > s.max_us) s.p99_us = s.max_us;  // the edge may overshoot the worst case
    return s;
  }

  /// Histogram bucket of a duration (exposed for tests). Wait-free.
  static int Bucket(uint64_t ns) noexcept {
    if (ns < (1u << kSubBits)) return static_cast<int>(ns);
    const int octave = 63 - std::countl_zero(ns);  // floor(log2 ns) >= kSubBits
    const int sub = static_cast<int>((ns >> (octave - kSubBits)) & ((1u << kSubBits) - 1));
    const int b = ((octave - kSubBits + 1) << kSubBits) + sub;
    return b < kBuckets ? b : kBuckets - 1;
  }

  /// Exclusive upper edge, in ns, of bucket `b`.
  static uint64_t BucketUpperNs(int b) noexcept {
    if (b < (1 << kSubBits)) return static_cast<uint64_t>(b) + 1;
    const int octave = (b >> kSubBits) + kSubBits - 1;
    const uint64_t sub = static_cast<uint64_t>(b & ((1 << kSubBits) - 1));
    return (uint64_t{1} << octave) + ((sub + 1) << (octave - kSubBits));
  }

 private:
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> max_ns_{0};
  std::atomic<uint64_t> over_{0};
  std::atomic<bool> reset_{false};
  std::array<std::atomic<uint64_t>, kBuckets> hist_{};
};

}  // namespace aers::backend

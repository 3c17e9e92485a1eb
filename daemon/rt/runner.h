// rt::Runner: the audio thread's entry point. Holds the current plan, takes
// the next plan from a lock-free pending slot at the start of a period, and hands
// replaced ones back to a normal thread through a ring.
#pragma once

#include <atomic>
#include <cstdint>

#include "rt/plan.h"
#include "rt/ring.h"

namespace aers::rt {

class Runner {
 public:
  /// Non-RT. Plans are owned by whoever publishes them (the engine): a
  /// Runner never frees one. Before destroying it, the owner takes every
  /// plan back with Publish(nullptr), DetachCurrent() and PopRetired().
  Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Audio thread. Wait-free, no allocation, no syscalls.
  /// Adopts a pending plan (or a finished crossfade's successor), then runs
  /// the current plan. Without a plan, or if `frames` exceeds the plan's
  /// period or the channel counts differ, writes silence and counts it.
  void Process(const float* const* in, uint32_t in_channels, float* const* out,
               uint32_t out_channels, uint32_t frames) noexcept {
    PreparePeriod();
    RunPrepared(in, in_channels, out, out_channels, frames);
  }

  /// Audio thread. Wait-free. Process() in two halves, for a backend that
  /// must pick its port buffers to match the plan: adopts a pending plan (or
  /// a finished crossfade's successor) and returns the io_layout of the plan
  /// the following RunPrepared() runs (0: no plan).
  uint64_t PreparePeriod() noexcept;
  /// Audio thread. Wait-free. Runs the plan PreparePeriod() chose.
  void RunPrepared(const float* const* in, uint32_t in_channels, float* const* out,
                   uint32_t out_channels, uint32_t frames) noexcept;
  /// Audio thread. Wait-free. Instead of RunPrepared() when the backend has
  /// no buffers for the plan's layout: writes silence and counts it.
  void RunSilent(float* const* out, uint32_t out_channels, uint32_t frames) noexcept;

  /// Non-RT, one publisher at a time (the engine, under its hand-off lock).
  /// Takes ownership of `plan`. Returns the previously pending plan if the
  /// audio thread never took it: the caller deletes it.
  /// `after_fade`: the plan fades from the graph the running crossfade (if
  /// any) leads to, so the audio thread takes it only once that fade has
  /// ended; a fade is never cut, even when the publisher stopped waiting
  /// for it (a stalled audio thread). Without it (a fresh plan: new format,
  /// new ports) the plan is taken at the next period.
  Plan* Publish(Plan* plan, bool after_fade = false) noexcept;

  /// Non-RT, one consumer at a time. A plan the audio thread retired, or
  /// nullptr; the caller deletes it.
  Plan* PopRetired() noexcept;

  /// Non-RT, only once the audio thread has stopped calling Process(): hands
  /// back the plan in use (or nullptr); the caller deletes it.
  Plan* DetachCurrent() noexcept;

  /// Whether a published plan waits for the audio thread to take it.
  bool has_pending() const noexcept { return pending_.load(std::memory_order_acquire) != 0; }
  /// Seq of the plan in use whose crossfade (if any) has finished.
  uint64_t settled_seq() const noexcept { return settled_seq_.load(std::memory_order_acquire); }
  /// Periods run.
  uint64_t cycles() const noexcept { return cycles_.load(std::memory_order_relaxed); }
  /// Periods that produced silence because no suitable plan was there.
  uint64_t silent_cycles() const noexcept { return silent_cycles_.load(std::memory_order_relaxed); }
  /// Periods in which a published plan, or the successor of a finished
  /// crossfade, waited because the retire ring was full.
  uint64_t deferred_swaps() const noexcept {
    return deferred_swaps_.load(std::memory_order_relaxed);
  }

 private:
  void Adopt(Plan* plan) noexcept;

  // The pending plan's address, its lowest bit set for `after_fade` (plans
  // are aligned to more than 2 bytes).
  static constexpr uintptr_t kAfterFade = 1;
  std::atomic<uintptr_t> pending_{0};
  static constexpr size_t kRetireCapacity = 64;
  SpscRing<Plan*, kRetireCapacity> retired_;
  std::atomic<uint64_t> settled_seq_{0};
  std::atomic<uint64_t> cycles_{0};
  std::atomic<uint64_t> silent_cycles_{0};
  std::atomic<uint64_t> deferred_swaps_{0};
  struct {
    Plan* current = nullptr;
  } rt_;  // audio thread only (and DetachCurrent once it stopped)
};

}  // namespace aers::rt

// Non-finite and clipped samples: the one rule for the whole graph.
//
//   - Samples that enter the graph from outside (backend inputs, render
//     input files) or leave a plugin's process() are checked: NaN and +-Inf
//     are replaced by 0 and counted on that input or node.
//   - Samples that leave the graph (backend outputs, render output files)
//     are checked the same way, so a backend never receives NaN/Inf even if
//     a built-in overflowed (a finite 3e38 through +24 dB is +Inf).
//   - Stateful built-ins never keep non-finite state: a biquad whose state
//     becomes non-finite resets it to 0 at the end of that period (counted
//     as a state reset), a delay writes 0 into its line in place of a
//     non-finite sample (counted as non-finite).
// So audio is finite again within one period after the input is.
// Clipped samples (finite, |x| > 1.0) are counted on external inputs and
// outputs, meters and plugin outputs; they are left as they are (floating
// point carries them; what clips is the device).
//
// Thread: the counters are written by the audio thread (relaxed atomic adds,
// only when a count is non-zero) and read by any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

namespace aers::rt {

/// Running counts of one signal point (an external port or a node).
struct SignalCounters {
  std::atomic<uint64_t> nonfinite{0};     ///< NaN/Inf samples replaced by 0
  std::atomic<uint64_t> clipped{0};       ///< finite samples with |x| > 1.0
  std::atomic<uint64_t> state_resets{0};  ///< filter channels whose non-finite state was reset

  /// Audio thread. Wait-free.
  void Add(uint32_t nonfinite_count, uint32_t clipped_count) noexcept {
    if (nonfinite_count != 0) nonfinite.fetch_add(nonfinite_count, std::memory_order_relaxed);
    if (clipped_count != 0) clipped.fetch_add(clipped_count, std::memory_order_relaxed);
  }
};

/// True for NaN and +-Inf. Works on the bits, so it holds under any
/// floating-point optimisation flags.
inline bool IsNonFinite(float x) noexcept {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return (bits & 0x7f800000u) == 0x7f800000u;
}

inline bool IsNonFinite(double x) noexcept {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
}

/// Audio thread. Wait-free, O(frames), vectorized. Replaces NaN/Inf in
/// x[0..frames) by 0; returns how many were replaced and adds the number of
/// finite samples with |x| > 1.0 to *clipped.
uint32_t SanitizeBlock(float* x, uint32_t frames, uint32_t* clipped) noexcept;

/// Audio thread. Wait-free, O(frames), vectorized. Copies src[0..frames)
/// to dst with NaN/Inf replaced by +0; counts as SanitizeBlock does. One
/// pass where a copy and a check in place would take two. src == dst is
/// allowed; other overlaps are not.
uint32_t SanitizeCopy(const float* src, float* dst, uint32_t frames, uint32_t* clipped) noexcept;

/// Audio thread. Like SanitizeBlock for a whole port and adds the counts to
/// `counters` (if not null).
void SanitizeChannels(float* const* channels, uint32_t count, uint32_t frames,
                      SignalCounters* counters) noexcept;

}  // namespace aers::rt

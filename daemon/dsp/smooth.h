// Parameter smoothing for node kinds: a target written by any thread, a
// current value moved toward it on the audio thread.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>

namespace aers::dsp {

/// Linear gain with a one-pole glide (time constant ~5 ms) that snaps to the
/// target when within 1e-5, so a settled gain is exact.
class SmoothedGain {
 public:
  /// Non-RT.
  SmoothedGain(float initial, double sample_rate_hz)
      : target_(initial),
        current_(initial),
        coef_(static_cast<float>(1.0 - std::exp(-1.0 / (0.005 * sample_rate_hz)))) {}

  /// Any thread. Wait-free.
  void Set(float target) noexcept { target_.store(target, std::memory_order_relaxed); }
  float target() const noexcept { return target_.load(std::memory_order_relaxed); }

  /// Audio thread. Call once per block; true if Next() must be used per sample.
  bool Moving() noexcept {
    target_cache_ = target_.load(std::memory_order_relaxed);
    return current_ != target_cache_;
  }
  /// Audio thread. Settled value (valid when !Moving()).
  float value() const noexcept { return current_; }
  /// Audio thread. The next per-sample value while Moving().
  float Next() noexcept {
    const float next = current_ + (target_cache_ - current_) * coef_;
    // Snap when within 1e-5 (-100 dB) or when float precision stalls the glide.
    current_ = (next == current_ || std::fabs(target_cache_ - next) < 1e-5f) ? target_cache_ : next;
    return current_;
  }

 private:
  std::atomic<float> target_;
  float current_;
  float target_cache_ = 0.0f;
  float coef_;
};

/// Audio thread. Wait-free. out[ch][n] = in[ch][n] * gain for `channels`
/// channels, the gain gliding per sample while it moves. in and out may be
/// the same buffers.
inline void ApplySmoothedGain(SmoothedGain& gain, const float* const* in, float* const* out,
                              int channels, uint32_t frames) noexcept {
  if (!gain.Moving()) {
    const float g = gain.value();
    for (int ch = 0; ch < channels; ++ch) {
      const float* x = in[ch];
      float* y = out[ch];
      for (uint32_t n = 0; n < frames; ++n) y[n] = x[n] * g;
    }
    return;
  }
  for (uint32_t n = 0; n < frames; ++n) {
    const float g = gain.Next();
    for (int ch = 0; ch < channels; ++ch) out[ch][n] = in[ch][n] * g;
  }
}

}  // namespace aers::dsp

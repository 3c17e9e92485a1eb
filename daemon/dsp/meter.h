// meter: passes audio through and measures peak and RMS per channel over a
// window; readings are published through atomics for any thread to read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "rt/processor.h"

namespace aers::dsp {

class MeterProcessor final : public rt::Processor, public rt::MeterTap {
 public:
  /// Non-RT.
  MeterProcessor(int channels, uint32_t window_frames);

  /// Audio thread. Wait-free.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override;

  /// Any thread. Last complete window of channel `ch` (linear).
  float peak(int ch) const noexcept override;
  float rms(int ch) const noexcept override;
  int channels() const noexcept override { return channels_; }
  const rt::MeterTap* AsMeter() const noexcept override { return this; }
  /// Any thread. Windows completed so far.
  uint64_t windows() const noexcept { return windows_.load(std::memory_order_acquire); }

 private:
  struct Channel {
    std::atomic<float> peak{0.0f};
    std::atomic<float> rms{0.0f};
    float acc_peak = 0.0f;  // audio thread
    double acc_sq = 0.0;    // audio thread
  };
  int channels_;
  uint32_t window_frames_;
  uint32_t count_ = 0;  // audio thread
  std::unique_ptr<Channel[]> ch_;
  std::atomic<uint64_t> windows_{0};
};

}  // namespace aers::dsp

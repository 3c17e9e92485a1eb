// meter: passes audio through and measures, per node,
//   * peak and RMS per channel over a window (linear, published per window);
//   * EBU R128 loudness (ITU-R BS.1770-4, EBU R 128, EBU Tech 3341 "EBU
//     mode", EBU Tech 3342 loudness range) through libebur128: momentary
//     (400 ms) and short-term (3 s) loudness in LUFS, integrated (gated)
//     loudness in LUFS, loudness range in LU, and true peak per channel
//     (4x oversampled below 96 kHz, 2x below 192 kHz) as linear amplitude
//     (dBTP = 20 log10).
// Readings are published through atomics for any thread to read.
//
// Where libebur128 runs: on the audio thread, inside Process(). It is
// created in histogram mode (EBUR128_MODE_HISTOGRAM), in which
// ebur128_add_frames_float() and the readers used here only touch buffers
// ebur128_init() allocated (the block lists of the non-histogram mode, which
// malloc per 100 ms block, are never used); it takes no locks and makes no
// syscalls. meter_test proves it with the allocation counter over minutes of
// signal and a reset. A ring to another thread was not chosen because an
// offline render runs faster than real time and would overflow any ring
// (dropped blocks would falsify the integrated loudness). Histogram mode
// quantises gated blocks to 0.1 dB bins (error below 0.05 LU), well inside
// Tech 3341's 0.1 LU tolerance.
//
// Cost on the audio thread: the K-weighting filter and the true-peak
// interpolator per sample, plus, every 100 ms, one sum over the last 100 ms
// of K-weighted audio (momentary and short-term are the means of the last 4
// and 30 such blocks) and ~4000 histogram operations. Memory: 3 s of
// K-weighted audio per channel (8 bytes a sample), allocated when the node
// is built.
//
// Channel weights (BS.1770-4): 1-4 channels L R (Ls Rs) and 5 channels
// L R C Ls Rs as libebur128 maps them; 6 channels L R C LFE Ls Rs (the LFE
// is not measured); channels 7 and beyond count with weight 1.0.
#pragma once

#include <ebur128.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rt/processor.h"

namespace aers::dsp {

class MeterProcessor final : public rt::Processor, public rt::MeterTap {
 public:
  /// Non-RT. Allocates everything Process() uses (libebur128's state
  /// included). INVALID_ARGUMENT when libebur128 refuses the channel count
  /// (more than 64) or the sample rate.
  /// `loudness` false: peak and RMS only (no libebur128 state, none of its
  /// cost); the loudness readings stay -inf and ResetLoudness() is refused.
  static absl::StatusOr<std::unique_ptr<MeterProcessor>> Create(int channels,
                                                                uint32_t window_frames,
                                                                const rt::StreamFormat& format,
                                                                bool loudness = true);
  ~MeterProcessor() override;
  MeterProcessor(const MeterProcessor&) = delete;
  MeterProcessor& operator=(const MeterProcessor&) = delete;

  /// Audio thread. Wait-free: no allocation, no locks, no syscalls.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept override;

  /// Any thread. Last complete window of channel `ch` (linear).
  float peak(int ch) const noexcept override;
  float rms(int ch) const noexcept override;
  int channels() const noexcept override { return channels_; }
  bool measures_loudness() const noexcept override { return loudness_; }
  /// Any thread. EBU R128 readings, refreshed every 100 ms of audio.
  float momentary_lufs() const noexcept override;
  float short_term_lufs() const noexcept override;
  float integrated_lufs() const noexcept override;
  float loudness_range_lu() const noexcept override;
  float true_peak(int ch) const noexcept override;
  /// Non-RT. Restarts integrated loudness, loudness range and true peak
  /// (and the momentary and short-term windows) from the next period on:
  /// prepares a fresh libebur128 state (allocates) that the audio thread
  /// swaps in wait-free; the state it replaces is freed by the next reset or
  /// the destructor, never on the audio thread. OK also when the audio thread
  /// is not running (the reset then happens at its next period).
  bool ResetLoudness() noexcept override;
  const rt::MeterTap* AsMeter() const noexcept override { return this; }
  rt::MeterTap* AsMeter() noexcept override { return this; }
  /// Any thread. Windows completed so far.
  uint64_t windows() const noexcept { return windows_.load(std::memory_order_acquire); }
  /// Any thread. Resets the audio thread has carried out.
  uint64_t loudness_resets() const noexcept {
    return loudness_resets_.load(std::memory_order_acquire);
  }
  /// Any thread. Loudness publications (one per 100 ms of audio) so far.
  uint64_t loudness_updates() const noexcept {
    return loudness_updates_.load(std::memory_order_acquire);
  }

 private:
  MeterProcessor(int channels, uint32_t window_frames, uint32_t max_period_frames,
                 uint32_t loudness_step_frames);
  /// Non-RT. A new libebur128 state with this meter's channel weights, or
  /// nullptr (out of memory or refused parameters).
  ebur128_state* NewLoudnessState() const noexcept;
  /// Audio thread. Reads libebur128 and stores the readings; after a reset
  /// the momentary and short-term blocks start from silence.
  void PublishLoudness(bool after_reset) noexcept;
  static constexpr uint64_t kMomentaryBlocks = 4;   ///< 400 ms of 100 ms blocks
  static constexpr uint64_t kShortTermBlocks = 30;  ///< 3 s

  struct Channel {
    std::atomic<float> peak{0.0f};
    std::atomic<float> rms{0.0f};
    std::atomic<float> true_peak{0.0f};
    float acc_peak = 0.0f;  // audio thread
    double acc_sq = 0.0;    // audio thread
  };
  int channels_;
  bool loudness_ = false;
  uint32_t window_frames_;
  unsigned long sample_rate_hz_ = 48000;  // libebur128's type
  uint32_t count_ = 0;                    // audio thread
  std::unique_ptr<Channel[]> ch_;
  std::atomic<uint64_t> windows_{0};

  // --- loudness ---
  struct {
    ebur128_state* state = nullptr;        ///< owned; swapped on reset
    std::unique_ptr<float[]> interleaved;  ///< max_period_frames x channels
    uint32_t max_period_frames = 0;
    uint32_t step_frames = 0;                    ///< 100 ms
    uint32_t since_publish = 0;                  ///< frames
    double block_energy[kShortTermBlocks] = {};  ///< mean-square energy of each 100 ms block
    uint64_t blocks = 0;                         ///< blocks measured since the last reset
  } rt_;  // data only touched by the audio thread (and the constructor/destructor)
  // Reset handshake. kIdle: ResetLoudness() owns spare_ and retired_; it
  // fills spare_ and moves to kReady. kReady: the audio thread swaps spare_
  // in, leaves its old state in retired_ and moves to kSwapped. kSwapped: the
  // next ResetLoudness() (or the destructor) frees retired_ and moves to
  // kIdle. Each side makes only its own transitions, so no pointer is ever
  // written by both.
  enum Phase : int { kIdle, kReady, kSwapped };
  std::atomic<int> reset_phase_{kIdle};
  ebur128_state* spare_ = nullptr;
  ebur128_state* retired_ = nullptr;
  std::atomic<uint64_t> loudness_resets_{0};
  absl::Mutex
      reset_mu_;  ///< serialises ResetLoudness() callers (and guards spare_/retired_ on their side)
  std::atomic<float> momentary_lufs_;
  std::atomic<float> short_term_lufs_;
  std::atomic<float> integrated_lufs_;
  std::atomic<float> range_lu_{0.0f};
  std::atomic<uint64_t> loudness_updates_{0};
};

}  // namespace aers::dsp

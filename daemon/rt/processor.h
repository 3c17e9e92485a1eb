// rt::Processor: one node instance as the audio thread sees it.
//
// Only code under daemon/rt/ and the Process()/SetParam() bodies of node
// kinds run on the audio thread. This header includes nothing outside the
// standard library (the build checks it).
#pragma once

#include <cstdint>

#include "rt/signal.h"

namespace aers::rt {

class BiquadSection;

/// What a metering node publishes: the last complete window of each
/// channel, linear (1.0 = full scale), and EBU R128 loudness (ITU-R
/// BS.1770-4; EBU Tech 3341 and 3342). Written by the audio thread, read by
/// any thread (wait-free atomics).
class MeterTap {
 public:
  virtual int channels() const noexcept = 0;
  /// True if the node measures loudness (meter `loudness: true`); else the
  /// loudness and true-peak readings below are meaningless.
  virtual bool measures_loudness() const noexcept = 0;
  /// max |x| over the last window of channel `ch`.
  virtual float peak(int ch) const noexcept = 0;
  /// RMS over the last window of channel `ch`.
  virtual float rms(int ch) const noexcept = 0;
  /// Loudness of all channels together in LUFS over the last 400 ms
  /// (momentary) and 3 s (short-term), refreshed every 100 ms; -inf for
  /// digital silence.
  virtual float momentary_lufs() const noexcept = 0;
  virtual float short_term_lufs() const noexcept = 0;
  /// Gated (-70 LUFS absolute, -10 LU relative) loudness since the node
  /// started or its last reset, LUFS; -inf until a 400 ms block passes the
  /// gate.
  virtual float integrated_lufs() const noexcept = 0;
  /// Loudness range (EBU Tech 3342) since the start or last reset, LU.
  virtual float loudness_range_lu() const noexcept = 0;
  /// Maximum true peak of channel `ch` since the start or last reset,
  /// linear (dBTP = 20 log10).
  virtual float true_peak(int ch) const noexcept = 0;
  /// Non-RT. Restarts the integrated loudness, loudness range and true
  /// peak at the next period. False when the fresh state cannot be
  /// allocated (nothing changes).
  virtual bool ResetLoudness() noexcept = 0;

 protected:
  ~MeterTap() = default;
};

/// The stream a plan is compiled for.
struct StreamFormat {
  double sample_rate_hz = 48000.0;
  uint32_t max_period_frames = 1024;  ///< Process() is never called with more
  friend bool operator==(const StreamFormat&, const StreamFormat&) = default;
};

/// A node instance. Created, updated and destroyed on non-real-time threads;
/// Process() runs on the audio thread only.
class Processor {
 public:
  virtual ~Processor() = default;

  /// Audio thread. Wait-free, no allocation, no syscalls.
  /// `in` holds one pointer per channel of every input port, ports in layout
  /// order; `out` likewise for output ports. Inputs and outputs never alias.
  /// frames <= StreamFormat::max_period_frames.
  virtual void Process(const float* const* in, float* const* out, uint32_t frames) noexcept = 0;

  /// Any thread. Wait-free: stores a target that Process() moves to smoothly
  /// (no click). `param` is the index in the kind's parameter table,
  /// `element` the list index for list parameters (else 0). Enum values are
  /// passed as their choice index, flags as 0/1.
  virtual void SetParam(uint32_t param, uint32_t element, double value) noexcept {
    (void)param;
    (void)element;
    (void)value;
  }

  /// Non-RT. Frames of latency this instance adds between input and output.
  virtual uint32_t LatencyFrames() const noexcept { return 0; }

  /// Non-RT (compile time). A biquad exposes its section so the plan
  /// compiler can fuse chains of biquads into one interleaved cascade.
  virtual BiquadSection* AsBiquad() noexcept { return nullptr; }

  /// Any thread. A metering node exposes its readings (the engine serves
  /// them to ReadMeter and the status API); others return nullptr.
  virtual const MeterTap* AsMeter() const noexcept { return nullptr; }
  /// Non-RT. The same, for ResetLoudness().
  virtual MeterTap* AsMeter() noexcept { return nullptr; }

  /// Non-RT (compile time). True when Process() runs code the host does not
  /// control (plugins): the plan then replaces non-finite output samples by
  /// 0 and counts them and clipped samples in `signal` (rt/signal.h).
  virtual bool ExternalCode() const noexcept { return false; }

  /// Non-finite, clipped and state-reset counts of this node (written by
  /// the audio thread, read by any thread). Carried over with the instance.
  SignalCounters signal;
};

}  // namespace aers::rt

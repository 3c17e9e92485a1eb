// Impulse responses for the convolver: read from an audio file (libsndfile),
// resampled once to the stream's rate (libsamplerate, SRC_SINC_BEST_QUALITY)
// and optionally normalised.
//
// Thread: non-real-time (file I/O, allocation).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsp/data_files.h"

namespace aers::dsp {

/// Longest impulse response accepted: 40 s (1,920,000 taps at 48 kHz), at
/// the file's rate and at the stream's.
inline constexpr double kMaxImpulseSeconds = 40.0;
/// Largest |sample| accepted in an impulse response (+80 dB): a file beyond
/// it is a mistake (a raw integer file read as float, a wrong scale), not a
/// filter.
inline constexpr float kMaxImpulseSample = 1e4f;
/// Most channels an impulse response file may have (a matrix of 16 x 16).
inline constexpr int kMaxImpulseChannels = 256;
/// Largest impulse response file read (bytes).
inline constexpr uint64_t kMaxImpulseFileBytes = uint64_t{256} << 20;

enum class IrNormalize {
  kNone,          ///< taps as in the file
  kDcGain,        ///< the largest |sum of taps| over channels becomes 1 (0 dB at DC)
  kPeakResponse,  ///< the largest |H(f)| over channels and frequencies becomes 1
};

struct ImpulseResponse {
  double file_rate_hz = 0.0;             ///< rate the file was recorded at
  size_t file_frames = 0;                ///< length in the file
  std::vector<std::vector<float>> taps;  ///< per channel, at the stream's rate
};

/// What the file holds, from its header only (cheap): channels, frames, rate.
struct ImpulseInfo {
  int channels = 0;
  size_t frames = 0;
  double rate_hz = 0.0;
};

/// Reads the header of `file`. Errors name the file: not an audio file
/// libsndfile reads, no frames, too many channels, longer than
/// kMaxImpulseSeconds, a sample rate libsamplerate cannot convert to
/// `stream_rate_hz` (<= 0: not checked).
absl::StatusOr<ImpulseInfo> ReadImpulseInfo(const DataFile& file, const std::string& shown_as,
                                            double stream_rate_hz);

/// Reads, checks (every sample finite and within kMaxImpulseSample), resamples to `stream_rate_hz`
/// (Hz) when the file's rate differs (keeping the filter's gain: the taps scale by file rate /
/// stream rate), and normalises. Errors name the file and, for a bad sample, its channel and frame.
absl::StatusOr<ImpulseResponse> LoadImpulseResponse(const DataFile& file,
                                                    const std::string& shown_as,
                                                    double stream_rate_hz, IrNormalize normalize);

}  // namespace aers::dsp

// The file side of offline rendering (backend/offline.cc): sample layout
// changes between files (interleaved) and the engine (planar), and a writer
// for the most common output, 32-bit float WAV, that writes the file
// libsndfile writes without libsndfile's per-sample PEAK scan.
//
// Why a writer of our own for one format: libsndfile keeps a PEAK chunk for
// float WAV and updates it in sf_writef_float with a scalar loop per channel
// (float32_peak_update in libsndfile 1.2), which costs about as much CPU as
// the write() of the same samples. FloatWavWriter finds the same peaks with a
// vectorised pass over the planar blocks and writes the same bytes: the
// header layout of wav_write_header (fmt, fact, PEAK, data) and the samples
// as they are. Only the PEAK chunk's timestamp (seconds since 1970 at close)
// differs between any two renders, as it did before. Every other output
// format still goes through libsndfile. tests/backend/render_io_test.cc
// compares the writer's files with libsndfile's byte for byte.
//
// Thread: any; one object is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace aers::backend {

/// dst[c][n] = src[n * channels + c] for n < frames.
void Deinterleave(const float* src, size_t channels, size_t frames, float* const* dst) noexcept;

/// dst[n * channels + c] = src[c][n] for n < frames.
void Interleave(const float* const* src, size_t channels, size_t frames, float* dst) noexcept;

/// Per channel, the largest |x| so far and the first frame where it occurs:
/// what libsndfile records in a float file's PEAK chunk (a silent channel
/// records 0 at frame 0). Samples must be finite (the engine's outputs are:
/// rt/signal.h); for finite values the comparison on the magnitude bits
/// orders exactly like libsndfile's fabs() comparison.
class PeakTracker {
 public:
  explicit PeakTracker(size_t channels) : max_bits_(channels, 0), position_(channels, 0) {}

  /// Takes the next `frames` frames of every channel.
  void Update(const float* const* planar, size_t frames) noexcept;

  size_t channels() const { return max_bits_.size(); }
  float value(size_t channel) const;
  uint64_t position(size_t channel) const { return position_[channel]; }

 private:
  std::vector<uint32_t> max_bits_;
  std::vector<uint64_t> position_;
  uint64_t frames_ = 0;
};

/// Bytes before the samples in a float WAV of `channels` channels.
size_t FloatWavHeaderBytes(int channels);

/// Whether a float WAV of this size has sizes that fit the RIFF header's 32-bit
/// fields (beyond that libsndfile's own writer is used, whatever it does).
bool FloatWavFits(int channels, uint64_t frames);

/// The header libsndfile 1.2 writes when it closes a SF_FORMAT_WAV |
/// SF_FORMAT_FLOAT file of `frames` frames with these peaks; `timestamp` is
/// the PEAK chunk's (libsndfile: time(NULL) at close).
std::vector<uint8_t> FloatWavHeader(int channels, int sample_rate, uint64_t frames,
                                    const PeakTracker& peaks, uint32_t timestamp);

/// Writes a 32-bit float WAV on an open, empty, writable descriptor (not
/// owned): Begin(), Write() for each block, Finish(). Little-endian hosts
/// only (the samples are written as they are in memory). Errors carry
/// strerror's text; the caller names the file.
class FloatWavWriter {
 public:
  FloatWavWriter(int fd, int channels, int sample_rate, size_t max_block_frames);

  absl::Status Begin();
  /// Interleaves planar[0..channels)[0..frames) and writes it with one
  /// write() (looping over short writes).
  absl::Status Write(const float* const* planar, size_t frames);
  /// Writes the final header at the start of the file (no fsync).
  absl::Status Finish();

  uint64_t frames() const { return frames_; }

 private:
  int fd_;
  int channels_;
  int sample_rate_;
  size_t max_block_frames_;
  std::vector<float> interleaved_;
  PeakTracker peaks_;
  uint64_t frames_ = 0;
};

/// write()s all of data (retrying short writes and EINTR). Returns an
/// error with strerror's text on failure.
absl::Status WriteAll(int fd, const void* data, size_t bytes);

/// pwrite()s all of data at offset.
absl::Status PwriteAll(int fd, const void* data, size_t bytes, uint64_t offset);

}  // namespace aers::backend

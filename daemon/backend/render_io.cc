#include "backend/render_io.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>

#include "absl/strings/str_cat.h"

namespace aers::backend {

namespace {

// The copy loops and the peak scan are memory-bound passes; on x86-64 a
// second copy for AVX2 is picked at load time (ifunc), as in dsp/convolver.
// Not under the sanitizers: an ifunc resolver runs during relocation, before
// their runtimes start.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define AERS_IO_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define AERS_IO_CLONES
#endif

inline uint32_t MagnitudeBits(float x) noexcept {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits & 0x7fffffffu;
}

// Largest magnitude bits in x[0..n): for finite floats, unsigned order of
// the magnitude bits is the order of the magnitudes.
AERS_IO_CLONES uint32_t MaxMagnitudeBits(const float* x, size_t n) noexcept {
  uint32_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t b = MagnitudeBits(x[i]);
    m = b > m ? b : m;
  }
  return m;
}

AERS_IO_CLONES void DeinterleaveStereo(const float* __restrict src, size_t frames,
                                       float* __restrict l, float* __restrict r) noexcept {
  for (size_t n = 0; n < frames; ++n) {
    l[n] = src[2 * n];
    r[n] = src[2 * n + 1];
  }
}

AERS_IO_CLONES void InterleaveStereo(const float* __restrict l, const float* __restrict r,
                                     size_t frames, float* __restrict dst) noexcept {
  for (size_t n = 0; n < frames; ++n) {
    dst[2 * n] = l[n];
    dst[2 * n + 1] = r[n];
  }
}

// Little-endian fields into a header of known size.
class HeaderBytes {
 public:
  explicit HeaderBytes(size_t size) : bytes_(size, 0) {}
  void U16(uint32_t v) { Put(v, 2); }
  void U32(uint32_t v) { Put(v, 4); }
  void Tag(const char (&tag)[5]) {
    for (int i = 0; i < 4; ++i) bytes_[pos_++] = static_cast<uint8_t>(tag[i]);
  }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  void Put(uint32_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_[pos_++] = static_cast<uint8_t>(v >> (8 * i));
  }
  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
};

absl::Status ErrnoStatus(int err) {
  const std::string text = std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return absl::ResourceExhaustedError(text);
  return absl::DataLossError(text);
}

}  // namespace

void Deinterleave(const float* src, size_t channels, size_t frames, float* const* dst) noexcept {
  if (frames == 0) return;
  if (channels == 1) {
    std::memcpy(dst[0], src, frames * sizeof(float));
  } else if (channels == 2) {
    DeinterleaveStereo(src, frames, dst[0], dst[1]);
  } else {
    for (size_t c = 0; c < channels; ++c) {
      float* d = dst[c];
      for (size_t n = 0; n < frames; ++n) d[n] = src[n * channels + c];
    }
  }
}

void Interleave(const float* const* src, size_t channels, size_t frames, float* dst) noexcept {
  if (frames == 0) return;
  if (channels == 1) {
    std::memcpy(dst, src[0], frames * sizeof(float));
  } else if (channels == 2) {
    InterleaveStereo(src[0], src[1], frames, dst);
  } else {
    for (size_t c = 0; c < channels; ++c) {
      const float* s = src[c];
      for (size_t n = 0; n < frames; ++n) dst[n * channels + c] = s[n];
    }
  }
}

void PeakTracker::Update(const float* const* planar, size_t frames) noexcept {
  for (size_t c = 0; c < max_bits_.size(); ++c) {
    const float* x = planar[c];
    const uint32_t m = MaxMagnitudeBits(x, frames);
    // libsndfile keeps an earlier peak on a tie, and never records 0.
    if (m > max_bits_[c]) {
      size_t i = 0;
      while (MagnitudeBits(x[i]) != m) ++i;
      max_bits_[c] = m;
      position_[c] = frames_ + i;
    }
  }
  frames_ += frames;
}

float PeakTracker::value(size_t channel) const {
  return std::bit_cast<float>(max_bits_[channel]);
}

size_t FloatWavHeaderBytes(int channels) {
  // RIFF+size+WAVE, fmt (8 + 16), fact (8 + 4), PEAK (8 + 8 + 8 per channel),
  // data (8).
  return 12 + 24 + 12 + 16 + 8 * static_cast<size_t>(channels) + 8;
}

bool FloatWavFits(int channels, uint64_t frames) {
  const uint64_t data = frames * 4u * static_cast<uint64_t>(channels);
  return channels > 0 && frames <= std::numeric_limits<uint32_t>::max() &&
         data + FloatWavHeaderBytes(channels) <= std::numeric_limits<uint32_t>::max();
}

std::vector<uint8_t> FloatWavHeader(int channels, int sample_rate, uint64_t frames,
                                    const PeakTracker& peaks, uint32_t timestamp) {
  // Field for field as libsndfile 1.2's wav_write_header and
  // wav_write_fmt_chunk for SF_FORMAT_FLOAT, and wavlike_write_peak_chunk.
  const auto ch = static_cast<uint32_t>(channels);
  const auto rate = static_cast<uint32_t>(sample_rate);
  const auto data_bytes = static_cast<uint32_t>(frames * 4u * ch);
  const auto header_bytes = static_cast<uint32_t>(FloatWavHeaderBytes(channels));
  HeaderBytes h(header_bytes);
  h.Tag("RIFF");
  h.U32(header_bytes + data_bytes - 8);
  h.Tag("WAVE");
  h.Tag("fmt ");
  h.U32(16);
  h.U16(3);  // WAVE_FORMAT_IEEE_FLOAT
  h.U16(ch);
  h.U32(rate);
  h.U32(rate * 4u * ch);  // bytes per second
  h.U16(4u * ch);         // block align
  h.U16(32);              // bits per sample
  h.Tag("fact");
  h.U32(4);
  h.U32(static_cast<uint32_t>(frames));
  h.Tag("PEAK");
  h.U32(8 + 8 * ch);
  h.U32(1);  // version
  h.U32(timestamp);
  for (size_t c = 0; c < peaks.channels(); ++c) {
    h.U32(std::bit_cast<uint32_t>(peaks.value(c)));
    h.U32(static_cast<uint32_t>(peaks.position(c)));
  }
  h.Tag("data");
  h.U32(data_bytes);
  return h.Take();
}

FloatWavWriter::FloatWavWriter(int fd, int channels, int sample_rate, size_t max_block_frames)
    : fd_(fd),
      channels_(channels),
      sample_rate_(sample_rate),
      max_block_frames_(max_block_frames),
      interleaved_(channels > 1 ? max_block_frames * static_cast<size_t>(channels) : 0),
      peaks_(static_cast<size_t>(channels)) {}

absl::Status FloatWavWriter::Begin() {
  // libsndfile writes a header at open too; its fields are final only at close.
  const auto header = FloatWavHeader(channels_, sample_rate_, 0, peaks_, 0);
  return WriteAll(fd_, header.data(), header.size());
}

absl::Status FloatWavWriter::Write(const float* const* planar, size_t frames) {
  if (frames == 0) return absl::OkStatus();
  if (frames > max_block_frames_) return absl::InternalError("block larger than the writer's");
  peaks_.Update(planar, frames);
  frames_ += frames;
  if (channels_ == 1) return WriteAll(fd_, planar[0], frames * sizeof(float));
  Interleave(planar, static_cast<size_t>(channels_), frames, interleaved_.data());
  return WriteAll(fd_, interleaved_.data(),
                  frames * static_cast<size_t>(channels_) * sizeof(float));
}

absl::Status FloatWavWriter::Finish() {
  const auto header = FloatWavHeader(channels_, sample_rate_, frames_, peaks_,
                                     static_cast<uint32_t>(std::time(nullptr)));
  return PwriteAll(fd_, header.data(), header.size(), 0);
}

absl::Status WriteAll(int fd, const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno);
    }
    if (n == 0) return ErrnoStatus(ENOSPC);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PwriteAll(int fd, const void* data, size_t bytes, uint64_t offset) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno);
    }
    if (n == 0) return ErrnoStatus(ENOSPC);
    p += n;
    offset += static_cast<uint64_t>(n);
    bytes -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace aers::backend

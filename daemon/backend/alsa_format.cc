#include "backend/alsa_format.h"

#include <cmath>
#include <cstring>

namespace aers::backend {

namespace {

// x * scale rounded to nearest and saturated to [lo, hi]; counts |x| > 1.
inline int32_t Quantize(float x, double scale, double offset, int32_t lo, int32_t hi,
                        uint64_t& clipped) noexcept {
  if (!std::isfinite(x)) return 0;
  if (std::fabs(x) > 1.0f) ++clipped;
  // double: x * 2^31 and its rounding are exact for every float x.
  const double v = std::nearbyint(static_cast<double>(x) * scale + offset);
  if (v >= static_cast<double>(hi)) return hi;
  if (v <= static_cast<double>(lo)) return lo;
  return static_cast<int32_t>(v);
}

inline void Store32(std::byte* p, uint32_t v) noexcept {
  p[0] = static_cast<std::byte>(v);
  p[1] = static_cast<std::byte>(v >> 8);
  p[2] = static_cast<std::byte>(v >> 16);
  p[3] = static_cast<std::byte>(v >> 24);
}

inline uint32_t Load32(const std::byte* p) noexcept {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

inline int32_t SignExtend24(uint32_t v) noexcept {
  return static_cast<int32_t>(v << 8) >> 8;
}

constexpr double k2Pow31 = 2147483648.0;
constexpr double k2Pow23 = 8388608.0;
constexpr double k2Pow15 = 32768.0;

}  // namespace

size_t BytesPerSample(SampleFormat format) noexcept {
  switch (format) {
    case SampleFormat::kFloat:
    case SampleFormat::kS32:
    case SampleFormat::kS24:
      return 4;
    case SampleFormat::kS24_3:
      return 3;
    case SampleFormat::kS16:
      return 2;
  }
  return 4;
}

std::string_view AlsaFormatName(SampleFormat format) noexcept {
  switch (format) {
    case SampleFormat::kFloat:
      return "FLOAT_LE";
    case SampleFormat::kS32:
      return "S32_LE";
    case SampleFormat::kS24:
      return "S24_LE";
    case SampleFormat::kS24_3:
      return "S24_3LE";
    case SampleFormat::kS16:
      return "S16_LE";
  }
  return "?";
}

uint64_t EncodeSamples(const float* src, size_t frames, SampleFormat format, std::byte* dst,
                       size_t stride, TpdfDither* dither) noexcept {
  uint64_t clipped = 0;
  switch (format) {
    case SampleFormat::kFloat:
      for (size_t i = 0; i < frames; ++i, dst += stride) {
        // Float devices take |x| > 1 as it is: nothing is clipped here.
        float x = std::isfinite(src[i]) ? src[i] : 0.0f;
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        Store32(dst, bits);
      }
      break;
    case SampleFormat::kS32:
      for (size_t i = 0; i < frames; ++i, dst += stride) {
        const int32_t v = Quantize(src[i], k2Pow31, 0.0, INT32_MIN, INT32_MAX, clipped);
        Store32(dst, static_cast<uint32_t>(v));
      }
      break;
    case SampleFormat::kS24:
      for (size_t i = 0; i < frames; ++i, dst += stride) {
        const int32_t v = Quantize(src[i], k2Pow23, 0.0, -(1 << 23), (1 << 23) - 1, clipped);
        Store32(dst, static_cast<uint32_t>(v));
      }
      break;
    case SampleFormat::kS24_3:
      for (size_t i = 0; i < frames; ++i, dst += stride) {
        const auto v = static_cast<uint32_t>(
            Quantize(src[i], k2Pow23, 0.0, -(1 << 23), (1 << 23) - 1, clipped));
        dst[0] = static_cast<std::byte>(v);
        dst[1] = static_cast<std::byte>(v >> 8);
        dst[2] = static_cast<std::byte>(v >> 16);
      }
      break;
    case SampleFormat::kS16:
      for (size_t i = 0; i < frames; ++i, dst += stride) {
        const double d = dither != nullptr ? static_cast<double>(dither->Next()) : 0.0;
        const auto v =
            static_cast<uint32_t>(Quantize(src[i], k2Pow15, d, INT16_MIN, INT16_MAX, clipped));
        dst[0] = static_cast<std::byte>(v);
        dst[1] = static_cast<std::byte>(v >> 8);
      }
      break;
  }
  return clipped;
}

void DecodeSamples(const std::byte* src, size_t stride, size_t frames, SampleFormat format,
                   float* dst) noexcept {
  switch (format) {
    case SampleFormat::kFloat:
      for (size_t i = 0; i < frames; ++i, src += stride) {
        const uint32_t bits = Load32(src);
        std::memcpy(&dst[i], &bits, 4);
      }
      break;
    case SampleFormat::kS32:
      for (size_t i = 0; i < frames; ++i, src += stride) {
        dst[i] =
            static_cast<float>(static_cast<double>(static_cast<int32_t>(Load32(src))) / k2Pow31);
      }
      break;
    case SampleFormat::kS24:
      for (size_t i = 0; i < frames; ++i, src += stride) {
        dst[i] = static_cast<float>(SignExtend24(Load32(src)) / k2Pow23);
      }
      break;
    case SampleFormat::kS24_3:
      for (size_t i = 0; i < frames; ++i, src += stride) {
        const uint32_t v = static_cast<uint32_t>(src[0]) | static_cast<uint32_t>(src[1]) << 8 |
                           static_cast<uint32_t>(src[2]) << 16;
        dst[i] = static_cast<float>(SignExtend24(v) / k2Pow23);
      }
      break;
    case SampleFormat::kS16:
      for (size_t i = 0; i < frames; ++i, src += stride) {
        const auto v = static_cast<int16_t>(static_cast<uint16_t>(
            static_cast<uint32_t>(src[0]) | static_cast<uint32_t>(src[1]) << 8));
        dst[i] = static_cast<float>(v / k2Pow15);
      }
      break;
  }
}

void SilenceSamples(std::byte* dst, size_t stride, size_t frames, SampleFormat format) noexcept {
  const size_t bytes = BytesPerSample(format);
  for (size_t i = 0; i < frames; ++i, dst += stride) std::memset(dst, 0, bytes);
}

}  // namespace aers::backend

// TPDF dither source for the audio thread: the ALSA backend's S16 writer and
// the `dither` node kind. Standard library only (rt/ rule).
#pragma once

#include <cstdint>

namespace aers::rt {

/// Triangular-PDF dither: the sum of two uniform variates, a 32-bit xorshift
/// generator each step (G. Marsaglia, "Xorshift RNGs", J. Stat. Softw. 8(14),
/// 2003), so a sequence is reproducible from its seed. Not thread-safe: one
/// per thread or per channel. Wait-free, no allocation.
class TpdfDither {
 public:
  explicit TpdfDither(uint32_t seed = 0x9E3779B9u) noexcept : state_(seed != 0 ? seed : 1) {}
  /// A triangular variate in (-1, 1), in LSB.
  float Next() noexcept { return Uniform() + Uniform() - 1.0f; }

 private:
  float Uniform() noexcept {  // [0, 1)
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return static_cast<float>(state_ >> 8) * (1.0f / 16777216.0f);
  }
  uint32_t state_;
};

}  // namespace aers::rt

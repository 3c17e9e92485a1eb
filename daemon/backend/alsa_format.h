// Sample conversion between the engine's float samples and the formats of
// ALSA devices (little-endian): FLOAT_LE, S32_LE, S24_LE (24 bits in the low
// bytes of 4, sign-extended), S24_3LE (3 bytes, packed), S16_LE.
//
// Float -> integer: x * 2^(bits-1), rounded to nearest, saturated to the
// format's range; a sample with |x| > 1.0 is counted as clipped (the same
// rule as the engine's clip counters, docs/robustness.md). Reducing to 16
// bits may add TPDF dither (two uniform variates of +-0.5 LSB, so +-1 LSB
// triangular; Lipshitz, Wannamaker & Vanderkooy, "Quantization and Dither: A
// Theoretical Survey", JAES 1992). Integer -> float: v / 2^(bits-1).
// Non-finite input (never expected: the engine zeroes it at its outputs)
// becomes 0.
//
// Thread: every function is real-time safe (no allocation, no locks, no
// system calls) and works on caller-owned memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rt/dither.h"

namespace aers::backend {

enum class SampleFormat : uint8_t { kFloat, kS32, kS24, kS24_3, kS16 };

/// Bytes one sample takes in the device buffer (4, 4, 4, 3, 2).
size_t BytesPerSample(SampleFormat format) noexcept;
/// ALSA's name: "FLOAT_LE", "S32_LE", "S24_LE", "S24_3LE", "S16_LE".
std::string_view AlsaFormatName(SampleFormat format) noexcept;

/// TPDF dither source (rt/dither.h, shared with the `dither` node kind).
using rt::TpdfDither;

/// Writes `frames` samples of `src` to `dst`, one every `stride` bytes (an
/// interleaved buffer: channels x bytes per sample; a channel's own buffer:
/// bytes per sample). `dither`: nullptr for none; only S16 uses it.
/// Returns the number of clipped samples (|x| > 1.0 written to an integer
/// format; FLOAT_LE keeps such samples as they are and counts none).
uint64_t EncodeSamples(const float* src, size_t frames, SampleFormat format, std::byte* dst,
                       size_t stride, TpdfDither* dither) noexcept;

/// Reads `frames` samples from `src` (one every `stride` bytes) into `dst`.
void DecodeSamples(const std::byte* src, size_t stride, size_t frames, SampleFormat format,
                   float* dst) noexcept;

/// Writes `frames` samples of silence (all-zero bytes in every format).
void SilenceSamples(std::byte* dst, size_t stride, size_t frames, SampleFormat format) noexcept;

}  // namespace aers::backend

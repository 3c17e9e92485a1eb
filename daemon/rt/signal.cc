#include "rt/signal.h"

#include "rt/clones.h"

namespace aers::rt {

namespace {

// Eight 32-bit lanes (GCC and clang vector extensions): AVX2 in the
// x86-64-v3 clone, two SSE2 or NEON registers elsewhere. Written out rather
// than left to the auto-vectoriser, which GCC runs on such loops only from
// -O3: packaged builds use -O2, where this loop was scalar and took a fifth
// of a chain R render's CPU time.
using Lanes = int32_t __attribute__((vector_size(32)));
constexpr uint32_t kLanes = 8;

// With the sign bit off, NaN and +-Inf are above kMaxFinite and |x| > 1.0
// is above kOne. The magnitudes are non-negative as int32, so the signed
// comparisons of the vector extensions order them correctly.
constexpr int32_t kMagnitude = 0x7fffffff;
constexpr int32_t kMaxFinite = 0x7f7fffff;  // FLT_MAX
constexpr int32_t kOne = 0x3f800000;        // 1.0f

// Lane-wise: adds -1 to `bad` where x is NaN/Inf and to `over` where
// 1.0 < |x| < Inf; sets `nonfinite` to the mask of the non-finite lanes.
// (References, not vector values: no vector crosses a call boundary, whose
// ABI would differ between the baseline and the AVX2 clone.)
[[gnu::always_inline]] inline void Classify(const Lanes& bits, Lanes& bad, Lanes& over,
                                            Lanes& nonfinite) noexcept {
  const Lanes mag = bits & kMagnitude;
  nonfinite = mag > kMaxFinite;
  bad += nonfinite;
  over += (mag > kOne) & ~nonfinite;
}

[[gnu::always_inline]] inline uint32_t Sum(const Lanes& v) noexcept {
  uint32_t s = 0;
  for (uint32_t i = 0; i < kLanes; ++i) s += static_cast<uint32_t>(v[i]);
  return s;
}

// Copies (kCopy) or checks in place. In place, the common case (nothing to
// replace) is a read-only pass; only a block with NaN/Inf is written.
// Inlined into the entry points below, so it is compiled for each of their
// clones.
template <bool kCopy>
[[gnu::always_inline]] inline uint32_t Sanitize(const float* src, float* dst, uint32_t frames,
                                                uint32_t* clipped) noexcept {
  Lanes bad{};
  Lanes over{};
  uint32_t i = 0;
  for (; i + 2 * kLanes <= frames; i += 2 * kLanes) {
    Lanes a;
    Lanes b;
    std::memcpy(&a, src + i, sizeof(a));
    std::memcpy(&b, src + i + kLanes, sizeof(b));
    Lanes bad_a;
    Lanes bad_b;
    Classify(a, bad, over, bad_a);
    Classify(b, bad, over, bad_b);
    if constexpr (kCopy) {
      a &= ~bad_a;  // +0.0f where non-finite
      b &= ~bad_b;
      std::memcpy(dst + i, &a, sizeof(a));
      std::memcpy(dst + i + kLanes, &b, sizeof(b));
    }
  }
  // The masks are -1 per hit: the counts are their negated sums.
  uint32_t nonfinite = 0u - Sum(bad);
  uint32_t clip = 0u - Sum(over);
  for (; i < frames; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &src[i], sizeof(bits));
    const uint32_t mag = bits & 0x7fffffffu;
    const bool is_bad = mag > static_cast<uint32_t>(kMaxFinite);
    nonfinite += is_bad ? 1u : 0u;
    clip += (!is_bad && mag > static_cast<uint32_t>(kOne)) ? 1u : 0u;
    if constexpr (kCopy) dst[i] = is_bad ? 0.0f : src[i];
  }
  if (!kCopy && nonfinite != 0) {
    for (uint32_t n = 0; n < frames; ++n) {
      if (IsNonFinite(dst[n])) dst[n] = 0.0f;
    }
  }
  *clipped += clip;
  return nonfinite;
}

}  // namespace

AERS_CLONES_V3 uint32_t SanitizeBlock(float* x, uint32_t frames, uint32_t* clipped) noexcept {
  return Sanitize<false>(x, x, frames, clipped);
}

AERS_CLONES_V3 uint32_t SanitizeCopy(const float* src, float* dst, uint32_t frames,
                                     uint32_t* clipped) noexcept {
  return Sanitize<true>(src, dst, frames, clipped);
}

void SanitizeChannels(float* const* channels, uint32_t count, uint32_t frames,
                      SignalCounters* counters) noexcept {
  uint32_t bad = 0;
  uint32_t over = 0;
  for (uint32_t c = 0; c < count; ++c) bad += SanitizeBlock(channels[c], frames, &over);
  if (counters != nullptr) counters->Add(bad, over);
}

}  // namespace aers::rt

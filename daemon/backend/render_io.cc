#include "backend/render_io.h"

#include <cstring>

#include "rt/clones.h"

namespace aers::backend {

namespace {

// The copy loops are memory-bound passes; on x86-64 a second copy for AVX2
// is picked at load time (rt/clones.h).
#define AERS_IO_CLONES AERS_CLONES_V3

// Four frames per step through 128-bit vectors (GCC and clang vector
// extensions: SSE2, AVX2 in the x86-64-v3 clone, NEON): the compilers leave
// these loops scalar at -O2, the packaged builds' level.
// Compilers without __builtin_shufflevector (GCC before 12) run the
// scalar loops only.
using F4 = float __attribute__((vector_size(16)));
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define AERS_SHUFFLE 1
#endif
#endif

AERS_IO_CLONES void DeinterleaveStereo(const float* __restrict src, size_t frames,
                                       float* __restrict l, float* __restrict r) noexcept {
  size_t n = 0;
#ifdef AERS_SHUFFLE
  for (; n + 4 <= frames; n += 4) {
    F4 a;  // L0 R0 L1 R1
    F4 b;  // L2 R2 L3 R3
    std::memcpy(&a, src + 2 * n, sizeof(a));
    std::memcpy(&b, src + 2 * n + 4, sizeof(b));
    const F4 left = __builtin_shufflevector(a, b, 0, 2, 4, 6);
    const F4 right = __builtin_shufflevector(a, b, 1, 3, 5, 7);
    std::memcpy(l + n, &left, sizeof(left));
    std::memcpy(r + n, &right, sizeof(right));
  }
#endif
  for (; n < frames; ++n) {
    l[n] = src[2 * n];
    r[n] = src[2 * n + 1];
  }
}

AERS_IO_CLONES void InterleaveStereo(const float* __restrict l, const float* __restrict r,
                                     size_t frames, float* __restrict dst) noexcept {
  size_t n = 0;
#ifdef AERS_SHUFFLE
  for (; n + 4 <= frames; n += 4) {
    F4 left;
    F4 right;
    std::memcpy(&left, l + n, sizeof(left));
    std::memcpy(&right, r + n, sizeof(right));
    const F4 lo = __builtin_shufflevector(left, right, 0, 4, 1, 5);  // L0 R0 L1 R1
    const F4 hi = __builtin_shufflevector(left, right, 2, 6, 3, 7);  // L2 R2 L3 R3
    std::memcpy(dst + 2 * n, &lo, sizeof(lo));
    std::memcpy(dst + 2 * n + 4, &hi, sizeof(hi));
  }
#endif
  for (; n < frames; ++n) {
    dst[2 * n] = l[n];
    dst[2 * n + 1] = r[n];
  }
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

}  // namespace aers::backend

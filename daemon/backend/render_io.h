// The file side of offline rendering (backend/offline.cc): sample layout
// changes between files (interleaved, as libsndfile reads and writes them)
// and the engine (planar).
//
// Thread: any; the functions keep no state.
#pragma once

#include <cstddef>

namespace aers::backend {

/// dst[c][n] = src[n * channels + c] for n < frames.
void Deinterleave(const float* src, size_t channels, size_t frames, float* const* dst) noexcept;

/// dst[n * channels + c] = src[c][n] for n < frames.
void Interleave(const float* const* src, size_t channels, size_t frames, float* dst) noexcept;

}  // namespace aers::backend

#include "rt/signal.h"

namespace aers::rt {

uint32_t SanitizeBlock(float* x, uint32_t frames, uint32_t* clipped) noexcept {
  // First pass counts on the bits (the common case, nothing to replace, is
  // one read-only vectorized pass); the second pass runs only if needed.
  uint32_t bad = 0;
  uint32_t over = 0;
  for (uint32_t i = 0; i < frames; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    const uint32_t mag = bits & 0x7fffffffu;
    bad += mag >= 0x7f800000u ? 1u : 0u;
    over += (mag > 0x3f800000u && mag < 0x7f800000u) ? 1u : 0u;  // 1.0f < |x| < Inf
  }
  if (bad != 0) {
    for (uint32_t i = 0; i < frames; ++i) {
      if (IsNonFinite(x[i])) x[i] = 0.0f;
    }
  }
  *clipped += over;
  return bad;
}

void SanitizeChannels(float* const* channels, uint32_t count, uint32_t frames,
                      SignalCounters* counters) noexcept {
  uint32_t bad = 0;
  uint32_t over = 0;
  for (uint32_t c = 0; c < count; ++c) bad += SanitizeBlock(channels[c], frames, &over);
  if (counters != nullptr) counters->Add(bad, over);
}

}  // namespace aers::rt

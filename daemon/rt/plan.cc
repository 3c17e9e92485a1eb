#include "rt/plan.h"

#include <algorithm>
#include <cstring>

namespace aers::rt {

void Plan::MixInto(float* dst, const SourceRef* src, uint32_t count,
                   uint32_t frames) const noexcept {
  if (count == 0) {
    std::memset(dst, 0, frames * sizeof(float));
    return;
  }
  const float inv_ramp = ramp_frames_ ? 1.0f / static_cast<float>(ramp_frames_) : 0.0f;
  const uint32_t pos = rt_.ramp_pos;
  const bool ramping = pos < ramp_frames_;
  for (uint32_t i = 0; i < count; ++i) {
    const float* s = src[i].data;
    Ramp ramp = src[i].ramp;
    if (ramp != Ramp::kNone && !ramping) {
      if (ramp == Ramp::kOut) {
        if (i == 0) std::memset(dst, 0, frames * sizeof(float));
        continue;  // faded out
      }
      ramp = Ramp::kNone;  // fully faded in
    }
    if (ramp == Ramp::kNone) {
      if (i == 0) {
        std::memcpy(dst, s, frames * sizeof(float));
      } else {
        for (uint32_t n = 0; n < frames; ++n) dst[n] += s[n];
      }
      continue;
    }
    for (uint32_t n = 0; n < frames; ++n) {
      float g = std::min(1.0f, static_cast<float>(pos + n + 1) * inv_ramp);
      if (ramp == Ramp::kOut) g = 1.0f - g;
      dst[n] = (i == 0 ? 0.0f : dst[n]) + g * s[n];
    }
  }
}

bool Plan::PlainCopy(const SourceRef& src) const noexcept {
  // What MixInto does with a single source: a copy unless it fades.
  return src.ramp == Ramp::kNone || (src.ramp == Ramp::kIn && rt_.ramp_pos >= ramp_frames_);
}

void Plan::Process(const float* const* in, float* const* out, uint32_t frames) noexcept {
  for (uint32_t ch = 0; ch < input_channels_; ++ch) {
    // Copied and checked in one pass (rule of rt/signal.h).
    uint32_t clipped = 0;
    const uint32_t bad = SanitizeCopy(in[ch], Buffer(input_buffers_[ch]), frames, &clipped);
    if (input_counters_[ch] != nullptr) input_counters_[ch]->Add(bad, clipped);
  }
  float* const* ptrs = ptrs_.data();
  for (const Step& s : steps_) {
    switch (s.op) {
      case Op::kMix:
        MixInto(Buffer(s.a), sources_.data() + s.b, s.n, frames);
        break;
      case Op::kOutput: {
        // data() + b, not &sources_[b]: an output with no sources has b == size().
        const SourceRef* src = sources_.data() + s.b;
        if (s.n == 1 && PlainCopy(src[0])) {
          // One source at full gain (the usual output): copied and checked
          // in one pass.
          uint32_t clipped = 0;
          const uint32_t bad = SanitizeCopy(src[0].data, out[s.a], frames, &clipped);
          if (s.counters != nullptr) s.counters->Add(bad, clipped);
        } else {
          MixInto(out[s.a], src, s.n, frames);
          SanitizeChannels(out + s.a, 1, frames, s.counters);
        }
        break;
      }
      case Op::kNode:
        s.proc->Process(ptrs + s.a, ptrs + s.b, frames);
        if (s.sanitize) SanitizeChannels(ptrs + s.b, s.channels, frames, &s.proc->signal);
        break;
      case Op::kCascade:
        RunCascade(sections_.data() + s.first_section, static_cast<int>(s.n),
                   static_cast<int>(s.channels), ptrs + s.a, ptrs + s.b, frames,
                   &cascade_caches_[s.cache]);
        break;
    }
  }
  rt_.ramp_pos = std::min(ramp_frames_, rt_.ramp_pos + frames);
}

}  // namespace aers::rt

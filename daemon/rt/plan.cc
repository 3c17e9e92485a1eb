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

void Plan::Process(const float* const* in, float* const* out, uint32_t frames) noexcept {
  for (uint32_t ch = 0; ch < input_channels_; ++ch) {
    float* buf = Buffer(input_buffers_[ch]);
    std::memcpy(buf, in[ch], frames * sizeof(float));
    SanitizeChannels(&buf, 1, frames, input_counters_[ch]);  // rule of rt/signal.h
  }
  float* const* ptrs = ptrs_.data();
  for (const Step& s : steps_) {
    switch (s.op) {
      case Op::kMix:
        MixInto(Buffer(s.a), sources_.data() + s.b, s.n, frames);
        break;
      case Op::kOutput:
        // data() + b, not &sources_[b]: an output with no sources has b == size().
        MixInto(out[s.a], sources_.data() + s.b, s.n, frames);
        SanitizeChannels(out + s.a, 1, frames, s.counters);
        break;
      case Op::kNode:
        s.proc->Process(ptrs + s.a, ptrs + s.b, frames);
        if (s.sanitize) SanitizeChannels(ptrs + s.b, s.channels, frames, &s.proc->signal);
        break;
      case Op::kCascade:
        RunCascade(sections_.data() + s.first_section, static_cast<int>(s.n),
                   static_cast<int>(s.channels), ptrs + s.a, ptrs + s.b, frames);
        break;
    }
  }
  rt_.ramp_pos = std::min(ramp_frames_, rt_.ramp_pos + frames);
}

}  // namespace aers::rt

#include "rt/plan.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace aers::rt {

namespace {
constexpr size_t kAlign = 64;
}  // namespace

Plan::Plan(StreamFormat format, uint32_t input_channels, uint32_t output_channels,
           uint32_t ramp_frames)
    : format_(format),
      input_channels_(input_channels),
      output_channels_(output_channels),
      ramp_frames_(ramp_frames),
      stride_((format.max_period_frames + 15u) & ~15u) {
  silence_ = NewBuffer();
  input_buffers_.reserve(input_channels);
  for (uint32_t ch = 0; ch < input_channels; ++ch) input_buffers_.push_back(NewBuffer());
}

Plan::~Plan() {
  if (arena_ != nullptr) ::operator delete[](arena_, std::align_val_t{kAlign});
}

BufferId Plan::NewBuffer() {
  return buffer_count_++;
}

void Plan::AddMix(BufferId dst, const std::vector<Source>& sources) {
  Step s{};
  s.op = Op::kMix;
  s.a = dst;
  s.b = static_cast<uint32_t>(pending_sources_.size());
  s.n = static_cast<uint32_t>(sources.size());
  pending_sources_.insert(pending_sources_.end(), sources.begin(), sources.end());
  steps_.push_back(s);
}

void Plan::AddOutput(uint32_t ch, const std::vector<Source>& sources) {
  Step s{};
  s.op = Op::kOutput;
  s.a = ch;
  s.b = static_cast<uint32_t>(pending_sources_.size());
  s.n = static_cast<uint32_t>(sources.size());
  pending_sources_.insert(pending_sources_.end(), sources.begin(), sources.end());
  steps_.push_back(s);
}

void Plan::AddNode(std::shared_ptr<Processor> proc, const std::vector<BufferId>& in,
                   const std::vector<BufferId>& out) {
  Step s{};
  s.op = Op::kNode;
  s.proc = proc.get();
  s.a = static_cast<uint32_t>(pending_ptrs_.size());
  pending_ptrs_.insert(pending_ptrs_.end(), in.begin(), in.end());
  s.b = static_cast<uint32_t>(pending_ptrs_.size());
  pending_ptrs_.insert(pending_ptrs_.end(), out.begin(), out.end());
  owned_.push_back(std::move(proc));
  steps_.push_back(s);
}

void Plan::AddCascade(const std::vector<std::shared_ptr<Processor>>& procs, int channels,
                      const std::vector<BufferId>& in, const std::vector<BufferId>& out) {
  Step s{};
  s.op = Op::kCascade;
  s.channels = static_cast<uint32_t>(channels);
  s.first_section = static_cast<uint32_t>(sections_.size());
  s.n = static_cast<uint32_t>(procs.size());
  for (const auto& p : procs) {
    sections_.push_back(p->AsBiquad());
    owned_.push_back(p);
  }
  s.a = static_cast<uint32_t>(pending_ptrs_.size());
  pending_ptrs_.insert(pending_ptrs_.end(), in.begin(), in.end());
  s.b = static_cast<uint32_t>(pending_ptrs_.size());
  pending_ptrs_.insert(pending_ptrs_.end(), out.begin(), out.end());
  ++fused_cascades_;
  steps_.push_back(s);
}

void Plan::Finalize() {
  const size_t floats = static_cast<size_t>(buffer_count_) * stride_;
  arena_ = static_cast<float*>(::operator new[](floats * sizeof(float), std::align_val_t{kAlign}));
  // Touch every page now so the audio thread never faults on first use.
  std::memset(arena_, 0, floats * sizeof(float));
  sources_.reserve(pending_sources_.size());
  for (const auto& s : pending_sources_) {
    sources_.push_back(SourceRef{arena_ + static_cast<size_t>(s.buffer) * stride_, s.ramp});
  }
  ptrs_.reserve(pending_ptrs_.size());
  for (BufferId id : pending_ptrs_) ptrs_.push_back(arena_ + static_cast<size_t>(id) * stride_);
  pending_sources_.clear();
  pending_ptrs_.clear();
}

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
    std::memcpy(arena_ + static_cast<size_t>(input_buffers_[ch]) * stride_, in[ch],
                frames * sizeof(float));
  }
  float* const* ptrs = ptrs_.data();
  for (const Step& s : steps_) {
    switch (s.op) {
      case Op::kMix:
        MixInto(arena_ + static_cast<size_t>(s.a) * stride_, &sources_[s.b], s.n, frames);
        break;
      case Op::kOutput:
        MixInto(out[s.a], &sources_[s.b], s.n, frames);
        break;
      case Op::kNode:
        s.proc->Process(ptrs + s.a, ptrs + s.b, frames);
        break;
      case Op::kCascade:
        RunCascade(&sections_[s.first_section], static_cast<int>(s.n), static_cast<int>(s.channels),
                   ptrs + s.a, ptrs + s.b, frames);
        break;
    }
  }
  rt_.ramp_pos = std::min(ramp_frames_, rt_.ramp_pos + frames);
}

}  // namespace aers::rt

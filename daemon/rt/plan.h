// rt::Plan: a compiled graph, the flat list of steps the audio thread runs.
//
// Built by compile::PlanBuilder and destroyed by the engine's reclaimer, both
// on non-real-time threads; this header only declares what the audio thread
// runs. Once published, only the audio thread touches a plan, and only
// through Process() and the `rt_` fields. A plan owns the node instances it
// runs (shared with the next plan when they carry over), so the last
// reference to an instance, and any library it came from, is dropped off the
// audio thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rt/biquad.h"
#include "rt/processor.h"
#include "rt/signal.h"

namespace aers::compile {
class PlanBuilder;
}

namespace aers::rt {

/// Gain ramp of one route during a crossfade between two plans.
enum class Ramp : uint8_t {
  kNone,  ///< full level
  kIn,    ///< 0 -> 1 over the plan's ramp (a route or node that was not there)
  kOut,   ///< 1 -> 0 over the plan's ramp (a route going away)
};

class Plan {
 public:
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  /// Audio thread. Wait-free, no allocation. `in` has input_channels()
  /// pointers (may be null if 0), `out` output_channels(); frames <=
  /// format().max_period_frames.
  void Process(const float* const* in, float* const* out, uint32_t frames) noexcept;

  /// Audio thread. True once the crossfade has run its full length.
  bool RampDone() const noexcept { return rt_.ramp_pos >= ramp_frames_; }

  const StreamFormat& format() const { return format_; }
  uint32_t input_channels() const { return input_channels_; }
  uint32_t output_channels() const { return output_channels_; }
  size_t step_count() const { return steps_.size(); }
  size_t fused_cascades() const { return fused_cascades_; }

  /// Set by the engine before publishing; identifies the edit.
  uint64_t seq = 0;
  /// Identity of the external port layout this plan reads and writes
  /// (model::IoLayoutId): a backend picks the port buffers that match it.
  uint64_t io_layout = 0;
  /// A crossfade plan carries the clean plan that replaces it when the ramp
  /// ends; the audio thread adopts it (releasing, not freeing, it).
  std::unique_ptr<Plan> successor;

 private:
  friend class compile::PlanBuilder;
  Plan() = default;

  enum class Op : uint8_t { kMix, kOutput, kNode, kCascade };
  struct Step {
    Op op;
    uint32_t a = 0;              // kMix: dst buffer; kOutput: channel; kNode/kCascade: first in ptr
    uint32_t b = 0;              // kMix/kOutput: first source; kNode/kCascade: first out ptr
    uint32_t n = 0;              // kMix/kOutput: source count; kCascade: section count
    uint32_t channels = 0;       // kCascade; kNode: output channel count
    uint32_t first_section = 0;  // kCascade
    uint32_t cache = 0;          // kCascade: index into cascade_caches_
    Processor* proc = nullptr;   // kNode
    bool sanitize = false;       // kNode: replace non-finite outputs (plugins)
    SignalCounters* counters = nullptr;  // kOutput: the external output's counters
  };
  struct SourceRef {
    const float* data;
    Ramp ramp;
  };
  float* Buffer(uint32_t id) const noexcept { return arena_ + static_cast<size_t>(id) * stride_; }
  void MixInto(float* dst, const SourceRef* src, uint32_t count, uint32_t frames) const noexcept;
  // Whether MixInto would copy this single source as it is (no fade).
  bool PlainCopy(const SourceRef& src) const noexcept;

  // Filled by compile::PlanBuilder, read-only afterwards.
  StreamFormat format_;
  uint32_t input_channels_ = 0;
  uint32_t output_channels_ = 0;
  uint32_t ramp_frames_ = 0;
  uint32_t stride_ = 0;  // floats per buffer (max period, rounded up to 16)
  std::vector<Step> steps_;
  std::vector<uint32_t> input_buffers_;          // buffer id per external input channel
  std::vector<SignalCounters*> input_counters_;  // per external input channel (may be null)
  std::vector<std::shared_ptr<SignalCounters>> owned_counters_;
  std::vector<float> storage_;  // every buffer, zeroed (pages touched)
  float* arena_ = nullptr;      // storage_ aligned to a cache line
  std::vector<SourceRef> sources_;
  std::vector<float*> ptrs_;  // node input/output channel pointers
  std::vector<std::shared_ptr<Processor>> owned_;
  std::vector<BiquadSection*> sections_;
  std::vector<CascadeCache> cascade_caches_;  // one per kCascade step (Step::cache)
  size_t fused_cascades_ = 0;

  struct {
    uint32_t ramp_pos = 0;  // frames run since adoption, saturating at ramp_frames_
  } rt_;                    // audio thread only
};

}  // namespace aers::rt

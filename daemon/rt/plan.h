// rt::Plan: a compiled graph, the flat list of steps the audio thread runs.
//
// Built and destroyed on non-real-time threads (compile::CompilePlan and the
// engine's reclaimer). Once published, only the audio thread touches it, and
// only through Process() and the `rt` fields. A plan owns the node instances
// it runs (shared with the next plan when they carry over), so the last
// reference to an instance, and any library it came from, is dropped off the
// audio thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rt/biquad.h"
#include "rt/processor.h"

namespace aers::rt {

/// Gain ramp of one route during a crossfade between two plans.
enum class Ramp : uint8_t {
  kNone,  ///< full level
  kIn,    ///< 0 -> 1 over the plan's ramp (a new route or node)
  kOut,   ///< 1 -> 0 over the plan's ramp (a route going away)
};

/// Identifies a buffer while the plan is being built (index into the arena).
using BufferId = uint32_t;

class Plan {
 public:
  /// Non-RT. `ramp_frames` is the crossfade length (0: no crossfade).
  Plan(StreamFormat format, uint32_t input_channels, uint32_t output_channels,
       uint32_t ramp_frames);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // --- building (non-RT, before Finalize) --------------------------------

  /// A new zeroed buffer of max_period_frames floats.
  BufferId NewBuffer();
  /// The buffer that holds external input channel `ch` during Process().
  BufferId InputBuffer(uint32_t ch) const { return input_buffers_[ch]; }
  /// A buffer that always reads as silence.
  BufferId SilenceBuffer() const { return silence_; }

  struct Source {
    BufferId buffer;
    Ramp ramp;
  };
  /// dst = sum of sources (with their ramps).
  void AddMix(BufferId dst, const std::vector<Source>& sources);
  /// External output channel `ch` = sum of sources (silence if none).
  void AddOutput(uint32_t ch, const std::vector<Source>& sources);
  /// Runs a node over the given channel buffers. The plan keeps `proc` alive.
  void AddNode(std::shared_ptr<Processor> proc, const std::vector<BufferId>& in,
               const std::vector<BufferId>& out);
  /// Runs a chain of biquad nodes fused into one interleaved cascade.
  void AddCascade(const std::vector<std::shared_ptr<Processor>>& procs, int channels,
                  const std::vector<BufferId>& in, const std::vector<BufferId>& out);
  /// Resolves buffer ids to memory and touches every page. No building after.
  void Finalize();

  // --- running (audio thread) --------------------------------------------

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
  /// A crossfade plan carries the clean plan that replaces it when the ramp
  /// ends; the audio thread adopts it (releasing, not freeing, it).
  std::unique_ptr<Plan> successor;

 private:
  enum class Op : uint8_t { kMix, kOutput, kNode, kCascade };
  struct Step {
    Op op;
    uint32_t a = 0;              // kMix: dst buffer; kOutput: channel; kNode/kCascade: first in ptr
    uint32_t b = 0;              // kMix/kOutput: first source; kNode/kCascade: first out ptr
    uint32_t n = 0;              // kMix/kOutput: source count; kCascade: section count
    uint32_t channels = 0;       // kCascade
    uint32_t first_section = 0;  // kCascade
    Processor* proc = nullptr;   // kNode
  };
  struct SourceRef {
    const float* data;
    Ramp ramp;
  };
  void MixInto(float* dst, const SourceRef* src, uint32_t count, uint32_t frames) const noexcept;

  StreamFormat format_;
  uint32_t input_channels_;
  uint32_t output_channels_;
  uint32_t ramp_frames_;
  uint32_t stride_;  // floats per buffer (max period, rounded up to a cache line)

  std::vector<Step> steps_;
  std::vector<BufferId> input_buffers_;
  BufferId silence_ = 0;
  uint32_t buffer_count_ = 0;
  std::vector<Source> pending_sources_;
  std::vector<BufferId> pending_ptrs_;  // buffer ids for node in/out pointers
  std::vector<std::shared_ptr<Processor>> owned_;
  std::vector<BiquadSection*> sections_;
  size_t fused_cascades_ = 0;

  // Resolved by Finalize().
  float* arena_ = nullptr;
  std::vector<SourceRef> sources_;
  std::vector<float*> ptrs_;

  struct {
    uint32_t ramp_pos = 0;  // frames run since adoption, saturating at ramp_frames_
  } rt_;                    // audio thread only
};

}  // namespace aers::rt

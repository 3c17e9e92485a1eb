// PlanBuilder: assembles an rt::Plan step by step (the compiler's back end).
// All allocation for a plan happens here, off the audio thread; Finish()
// hands over a plan whose memory is allocated and touched.
//
// Thread: non-real-time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rt/plan.h"

namespace aers::compile {

class PlanBuilder {
 public:
  /// Identifies a buffer of max_period_frames floats while building.
  using BufferId = uint32_t;
  struct Source {
    BufferId buffer;
    rt::Ramp ramp;
  };

  /// `ramp_frames` is the crossfade length (0: no crossfade).
  PlanBuilder(rt::StreamFormat format, uint32_t input_channels, uint32_t output_channels,
              uint32_t ramp_frames);

  /// A new zeroed buffer.
  BufferId NewBuffer() { return buffer_count_++; }
  /// The buffer that holds external input channel `ch` during Process().
  BufferId InputBuffer(uint32_t ch) const { return plan_->input_buffers_[ch]; }
  /// A buffer that always reads as silence.
  BufferId SilenceBuffer() const { return silence_; }

  /// dst = sum of sources (with their ramps).
  void AddMix(BufferId dst, const std::vector<Source>& sources);
  /// External output channel `ch` = sum of sources (silence if none), with
  /// non-finite samples replaced and counted in `counters` (may be null).
  void AddOutput(uint32_t ch, const std::vector<Source>& sources,
                 std::shared_ptr<rt::SignalCounters> counters = nullptr);
  /// Where non-finite and clipped samples of external input channel `ch`
  /// are counted (the plan replaces non-finite ones whether or not this is set).
  void SetInputCounters(uint32_t ch, std::shared_ptr<rt::SignalCounters> counters);
  /// Runs a node over the given channel buffers. The plan keeps `proc` alive.
  void AddNode(std::shared_ptr<rt::Processor> proc, const std::vector<BufferId>& in,
               const std::vector<BufferId>& out);
  /// Runs a chain of biquad nodes fused into one interleaved cascade.
  void AddCascade(const std::vector<std::shared_ptr<rt::Processor>>& procs, int channels,
                  const std::vector<BufferId>& in, const std::vector<BufferId>& out);

  /// Allocates and zeroes every buffer, resolves ids to pointers. The
  /// builder is spent afterwards.
  std::unique_ptr<rt::Plan> Finish();

 private:
  void AddSources(const std::vector<Source>& sources, rt::Plan::Step& step);
  void KeepCounters(std::shared_ptr<rt::SignalCounters> counters);
  void AddPointers(const std::vector<BufferId>& in, const std::vector<BufferId>& out,
                   rt::Plan::Step& step);

  std::unique_ptr<rt::Plan> plan_;
  BufferId buffer_count_ = 0;
  BufferId silence_ = 0;
  std::vector<Source> sources_;  // resolved to rt::Plan::SourceRef by Finish()
  std::vector<BufferId> ptrs_;   // resolved to float* by Finish()
};

}  // namespace aers::compile
